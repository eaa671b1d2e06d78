// Debian packages the runtime needs on the host. Installed with apt when missing (root on Debian only);
// anywhere else the message names them.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { EngineError } from './engine.ts';

export const RUNTIME_PACKAGES = ['docker.io', 'debootstrap', 'busybox-static', 'gcc', 'libc6-dev', 'iptables', 'e2fsprogs'];

export function missingPackages(pkgs: string[]): string[] {
  return pkgs.filter((p) => spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' }).stdout?.includes('install ok installed') !== true);
}

export function ensurePackages(pkgs: string[], log: (m: string) => void = () => {}): void {
  const missing = missingPackages(pkgs);
  if (!missing.length) return;
  if (process.getuid?.() !== 0 || !existsSync('/etc/debian_version')) {
    throw new EngineError(
      'PACKAGES_MISSING',
      `Berth needs these Debian packages: ${missing.join(' ')}. Install them (apt-get install ${missing.join(' ')}) or run as root on Debian.`,
    );
  }
  log(`installing ${missing.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [
    ['update', '-qq'],
    ['install', '-y', '-qq', '--no-install-recommends', ...missing],
  ]) {
    const r = spawnSync('apt-get', args, { env, encoding: 'utf8' });
    if (r.status !== 0) {
      throw new EngineError('APT_FAILED', `apt-get ${args[0]} failed (exit ${r.status}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
    }
  }
}
