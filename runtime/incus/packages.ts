// Host packages for Incus. Debian 12 gets incus-base/incus-client from bookworm-backports (a sources entry
// Berth adds, on the same mirror the host's apt already uses); Debian 13 has them in main. Never the
// `incus` package: it pulls in qemu for virtual machines, which Berth does not run.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { debianMirror } from '../images/build.ts';
import { IncusError } from './errors.ts';

export const INCUS_PACKAGES = ['incus-base', 'incus-client'];
// lxcfs makes free/nproc/meminfo inside a node show its own limits; dnsmasq-base is what Incus bridges run
// (only Recommended by incus-base); btrfs-progs for the copy-on-write pool. Without the nft command incusd
// uses its xtables firewall driver, which Berth's bridges barely touch (ipv4.firewall=false).
export const HELPER_PACKAGES = ['lxcfs', 'btrfs-progs', 'dnsmasq-base'];
export const BACKPORTS_FILE_NAME = 'berth-bookworm-backports.sources';

export function debianCodename(osRelease = '/etc/os-release'): string | null {
  if (!existsSync(osRelease)) return null;
  return /^VERSION_CODENAME=(\S+)/m.exec(readFileSync(osRelease, 'utf8'))?.[1] ?? null;
}

/** The host's apt source files (sources.list and the .list/.sources files beside it) that exist. */
export function aptSourceFiles(aptDir = '/etc/apt'): string[] {
  const dir = join(aptDir, 'sources.list.d');
  const listed = existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => /\.(list|sources)$/.test(f))
        .map((f) => join(dir, f))
    : [];
  return [join(aptDir, 'sources.list'), ...listed].filter(existsSync);
}

function aptSourcesMention(suite: string, aptDir = '/etc/apt'): boolean {
  const files = aptSourceFiles(aptDir);
  return files.some((f) => new RegExp(`^(?!#).*\\b${suite}\\b`, 'm').test(readFileSync(f, 'utf8')));
}

function apt(args: string[]) {
  const r = spawnSync('apt-get', args, { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, encoding: 'utf8' });
  if (r.status !== 0)
    throw new IncusError(
      'APT_FAILED',
      `apt-get ${args.join(' ')} failed (exit ${r.status}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`,
    );
}

/** Why Incus cannot run here, or null when it can (root on Debian 12 or 13). */
export function incusUnsupported(): string | null {
  if (process.getuid?.() !== 0) return 'not root';
  const codename = debianCodename();
  if (!existsSync('/etc/debian_version') || !codename) return 'not Debian';
  if (!['bookworm', 'trixie'].includes(codename)) return `${codename} (Berth knows where Incus comes from on Debian 12 and 13 only)`;
  if (!existsSync('/sys/fs/cgroup')) return 'no cgroup file system';
  return null;
}

/** A bookworm-backports entry on the mirror the host's apt already uses, unless one is there. */
export function ensureBackportsSource(log: (m: string) => void = () => {}, aptDir = '/etc/apt'): { added: boolean } {
  if (aptSourcesMention('bookworm-backports', aptDir)) return { added: false };
  const mirror = debianMirror(aptDir);
  log(`adding bookworm-backports (${mirror}) to apt sources for Incus`);
  writeFileSync(
    join(aptDir, 'sources.list.d', BACKPORTS_FILE_NAME),
    `# Added by Berth: Incus 6.0 LTS is in bookworm-backports.\nTypes: deb\nURIs: ${mirror}\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`,
  );
  return { added: true };
}

/** The packages of `pkgs` not installed, from one dpkg-query call (it is on every bring-up's path). */
export function missingPackages(pkgs: string[]): string[] {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Package} ${Status}\n', ...pkgs], { encoding: 'utf8' });
  const ok = new Set(
    (r.stdout ?? '')
      .split('\n')
      .filter((l) => l.endsWith(' install ok installed'))
      .map((l) => l.split(' ')[0].split(':')[0]),
  );
  return pkgs.filter((p) => !ok.has(p));
}

/** Installs what is missing; a no-op (one dpkg-query call) when all is there. */
export function ensureIncusPackages(log: (m: string) => void = () => {}): { installed: string[] } {
  const missing = missingPackages([...HELPER_PACKAGES, ...INCUS_PACKAGES]);
  if (!missing.length) return { installed: [] };
  const codename = debianCodename();
  const incus = missing.filter((p) => INCUS_PACKAGES.includes(p));
  const helpers = missing.filter((p) => HELPER_PACKAGES.includes(p));
  if (codename === 'bookworm' && incus.length) ensureBackportsSource(log);
  log(`installing ${missing.join(' ')} with apt-get`);
  apt(['update', '-qq']);
  if (helpers.length) apt(['install', '-y', '-qq', '--no-install-recommends', ...helpers]);
  if (incus.length) apt(['install', '-y', '-qq', '--no-install-recommends', ...(codename === 'bookworm' ? ['-t', 'bookworm-backports'] : []), ...incus]);
  return { installed: missing };
}
