// The offline image catalog: what each local image is, where it comes from, and its tags.
export type CatalogImage = {
  name: string;
  tags: string[];
  description: string;
  /** Debian packages the image is made from (recorded in its labels). */
  packages: string[];
  /** How it is made: a debootstrap import, a host binary import, or a Dockerfile in runtime/images/<name>. */
  kind: 'debootstrap' | 'busybox' | 'dockerfile';
};

export const CATALOG: CatalogImage[] = [
  {
    name: 'debian',
    tags: ['bookworm', '12', 'latest'],
    kind: 'debootstrap',
    description: 'Debian 12 (bookworm), minimal base made with debootstrap --variant=minbase',
    packages: ['debootstrap minbase'],
  },
  {
    name: 'busybox',
    tags: ['latest'],
    kind: 'busybox',
    description: 'BusyBox: one static binary with a shell and the common Unix tools',
    packages: ['busybox-static'],
  },
  { name: 'hello-world', tags: ['latest'], kind: 'dockerfile', description: 'Prints a greeting that explains what just happened', packages: [] },
  { name: 'nginx', tags: ['latest'], kind: 'dockerfile', description: 'nginx web server with a welcome page on port 80', packages: ['nginx-light'] },
  { name: 'httpd', tags: ['latest'], kind: 'dockerfile', description: 'Apache httpd answering "It works!" on port 80', packages: ['apache2'] },
  { name: 'redis', tags: ['latest'], kind: 'dockerfile', description: 'Redis key-value store on port 6379', packages: ['redis-server', 'redis-tools'] },
  { name: 'python', tags: ['latest', '3'], kind: 'dockerfile', description: 'Python 3 interpreter', packages: ['python3', 'python3-venv'] },
  { name: 'node', tags: ['latest'], kind: 'dockerfile', description: 'Node.js and npm', packages: ['nodejs', 'npm'] },
  {
    name: 'postgres',
    tags: ['latest', '15'],
    kind: 'dockerfile',
    description: 'PostgreSQL 15 on port 5432; POSTGRES_PASSWORD/USER/DB as in the official image',
    packages: ['postgresql'],
  },
  {
    name: 'mysql',
    tags: ['latest'],
    kind: 'dockerfile',
    description: 'MariaDB (a MySQL fork) on port 3306; MYSQL_* variables as in the official mysql image',
    packages: ['mariadb-server', 'mariadb-client'],
  },
  {
    name: 'wordpress',
    tags: ['latest'],
    kind: 'dockerfile',
    description: 'WordPress on Apache and PHP, port 80; WORDPRESS_DB_* variables as in the official image',
    packages: ['wordpress', 'apache2', 'libapache2-mod-php', 'php-mysql'],
  },
  { name: 'registry', tags: ['latest', '2'], kind: 'dockerfile', description: 'CNCF Distribution registry on port 5000', packages: ['docker-registry'] },
];

export const imageRef = (img: CatalogImage, tag = img.tags[0]) => `${img.name}:${tag}`;

export function labels(img: CatalogImage, recipe: string): Record<string, string> {
  return {
    'org.opencontainers.image.title': img.name,
    'org.opencontainers.image.description': img.description,
    'org.opencontainers.image.source': 'Berth local build (runtime/images)',
    'org.opencontainers.image.vendor': 'Berth',
    'berth.local-build': 'true',
    'berth.debian-packages': img.packages.join(' '),
    'berth.recipe': recipe,
  };
}
