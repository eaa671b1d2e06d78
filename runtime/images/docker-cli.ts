// The docker CLI against a given engine, for the runtime's build steps (streaming, exit codes, no daemon API types).
import { spawn, spawnSync } from 'node:child_process';

export function dockerSync(host: string, args: string[], input?: Buffer | string) {
  return spawnSync('docker', args, { env: { ...process.env, DOCKER_HOST: host }, input, encoding: 'utf8', maxBuffer: 256 << 20 });
}

/** Runs docker with stdin from a stream or buffer; resolves with the exit code and the output's tail. */
export function docker(host: string, args: string[], stdin?: NodeJS.ReadableStream): Promise<{ code: number; tail: string }> {
  return new Promise((resolve) => {
    const child = spawn('docker', args, { env: { ...process.env, DOCKER_HOST: host }, stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (b: Buffer) => {
      tail = (tail + b.toString()).slice(-4000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    if (stdin) stdin.pipe(child.stdin!);
    child.on('close', (code) => resolve({ code: code ?? 1, tail }));
  });
}

export function imageLabel(host: string, ref: string, label: string): string | null {
  const r = dockerSync(host, ['image', 'inspect', '-f', `{{index .Config.Labels "${label}"}}`, ref]);
  return r.status === 0 ? r.stdout.trim() : null;
}

export function imageId(host: string, ref: string): string | null {
  const r = dockerSync(host, ['image', 'inspect', '-f', '{{.Id}}', ref]);
  return r.status === 0 ? r.stdout.trim() : null;
}
