// Every catalog image does its namesake's job, on the host engine, and the mirror serves them.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createConnection } from 'node:net';
import { engineHost } from '../helpers/server.ts';
import { eventually } from '../helpers/wait.ts';

let host = '';
const made: string[] = [];
const docker = (...args: string[]) =>
  execFileSync('docker', args, { env: { ...process.env, DOCKER_HOST: host }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
const tag = randomBytes(3).toString('hex');

function run(name: string, ...args: string[]): string {
  const n = `cat-${name}-${tag}`;
  made.push(n);
  docker('run', '-d', '--name', n, ...args);
  return docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', n);
}

// Images start their services at their own pace (postgres initialises a database first).
const until = <T>(probe: () => Promise<T | undefined>) => eventually(probe, { timeoutMs: 60_000, intervalMs: 500, what: 'the service to answer' });
const httpText = (url: string) =>
  until(async () => {
    const r = await fetch(url);
    return r.ok ? r.text() : undefined;
  });

test.before(async () => {
  host = await engineHost();
});
test.after.always(() => {
  for (const n of made) {
    try {
      docker('rm', '-f', '-v', n);
    } catch {
      /* gone */
    }
  }
});

test('hello-world prints its greeting; busybox and debian run commands', (t) => {
  t.regex(docker('run', '--rm', 'hello-world'), /Hello from Docker!/);
  t.is(docker('run', '--rm', 'busybox', 'echo', 'hi'), 'hi');
  t.regex(docker('run', '--rm', 'debian', 'cat', '/etc/os-release'), /bookworm/);
  t.is(docker('run', '--rm', 'python', 'python', '-c', 'print(6*7)'), '42');
  t.is(docker('run', '--rm', 'node', 'node', '-e', 'console.log(6*7)'), '42');
});

test('httpd says It works! and nginx shows its welcome page', async (t) => {
  t.regex(await httpText(`http://${run('httpd', 'httpd')}/`), /It works!/);
  t.regex(await httpText(`http://${run('nginx', 'nginx')}/`), /Welcome to nginx!/);
});

test('redis answers PING', async (t) => {
  const ip = run('redis', 'redis');
  const reply = await until(
    () =>
      new Promise<string | undefined>((ok) => {
        const s = createConnection(6379, ip, () => s.write('PING\r\n'));
        s.on('data', (b) => {
          ok(b.toString());
          s.end();
        });
        s.on('error', () => ok(undefined));
      }),
  );
  t.is(reply, '+PONG\r\n');
});

test("postgres and mysql (MariaDB) accept connections with the official images' variables", async (t) => {
  run('postgres', '-e', 'POSTGRES_PASSWORD=pw', 'postgres');
  run('mysql', '-e', 'MYSQL_ROOT_PASSWORD=pw', '-e', 'MYSQL_DATABASE=shop', 'mysql');
  t.is(
    await until(async () => {
      try {
        return docker('exec', `cat-postgres-${tag}`, 'psql', '-U', 'postgres', '-tAc', 'select 6*7');
      } catch {
        return undefined;
      }
    }),
    '42',
  );
  t.is(
    await until(async () => {
      try {
        return docker('exec', `cat-mysql-${tag}`, 'mariadb', '-uroot', '-ppw', '-N', '-D', 'shop', '-e', 'select 6*7');
      } catch {
        return undefined;
      }
    }),
    '42',
  );
  t.regex(docker('image', 'inspect', '-f', '{{index .Config.Labels "org.opencontainers.image.description"}}', 'mysql'), /MariaDB/);
});

test('wordpress with mysql serves its install page', async (t) => {
  const net = `cat-net-${tag}`;
  docker('network', 'create', net);
  try {
    run(
      'wpdb',
      '--network',
      net,
      '--network-alias',
      'db',
      '-e',
      'MYSQL_ROOT_PASSWORD=pw',
      '-e',
      'MYSQL_DATABASE=wordpress',
      '-e',
      'MYSQL_USER=wp',
      '-e',
      'MYSQL_PASSWORD=wp',
      'mysql',
    );
    const ip = run(
      'wp',
      '--network',
      net,
      '-e',
      'WORDPRESS_DB_HOST=db',
      '-e',
      'WORDPRESS_DB_USER=wp',
      '-e',
      'WORDPRESS_DB_PASSWORD=wp',
      '-e',
      'WORDPRESS_DB_NAME=wordpress',
      'wordpress',
    );
    t.regex(await httpText(`http://${ip}/wp-admin/install.php`), /WordPress/);
  } finally {
    for (const n of [`cat-wp-${tag}`, `cat-wpdb-${tag}`]) {
      try {
        docker('rm', '-f', n);
      } catch {
        /* gone */
      }
    }
    docker('network', 'rm', net);
  }
});

test('every catalog image carries labels saying it is a local build and from which packages', (t) => {
  for (const img of ['debian', 'busybox', 'hello-world', 'nginx', 'httpd', 'redis', 'python', 'node', 'postgres', 'mysql', 'wordpress', 'registry']) {
    const l = JSON.parse(docker('image', 'inspect', '-f', '{{json .Config.Labels}}', img)) as Record<string, string>;
    t.is(l['berth.local-build'], 'true', img);
    t.regex(l['org.opencontainers.image.source'], /Berth local build/, img);
    t.true('berth.debian-packages' in l, img);
  }
});

test('the registry mirror serves the catalog as library/<name>', async (t) => {
  const r = await fetch('http://127.0.0.1:5000/v2/library/nginx/manifests/latest', {
    method: 'HEAD',
    headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
  });
  t.is(r.status, 200);
  const tags = (await (await fetch('http://127.0.0.1:5000/v2/library/debian/tags/list')).json()) as { tags: string[] };
  t.true(tags.tags.includes('bookworm'));
});
