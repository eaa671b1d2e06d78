// The runtime under bad conditions: each failure is named clearly and nothing that worked is lost.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureEngine, EngineError } from '../../runtime/bootstrap/engine.ts';
import { buildCatalog } from '../../runtime/images/build.ts';
import { imageId } from '../../runtime/images/docker-cli.ts';
import { MirrorError, startMirror } from '../../runtime/mirror/mirror.ts';
import { engineHost } from '../helpers/server.ts';

const root = join(import.meta.dirname, '..', '..');

test('DOCKER_HOST pointing at nothing: a clear error naming the variable', async (t) => {
  const err = await t.throwsAsync(ensureEngine({ env: { ...process.env, DOCKER_HOST: 'unix:///nonexistent/docker.sock' } }));
  t.true(err instanceof EngineError);
  t.regex(err!.message, /DOCKER_HOST=unix:\/\/\/nonexistent\/docker.sock is set but no Docker engine answers/);
});

test('no engine and not root: says what to install instead of trying', (t) => {
  const state = mkdtempSync(join(tmpdir(), 'berth-noroot-'));
  const script = `import { ensureEngine } from ${JSON.stringify(join(root, 'runtime/bootstrap/engine.ts'))};
    try { await ensureEngine(); console.log('UNEXPECTED'); } catch (e) { console.log(e.code + ': ' + e.message); }`;
  const env = { PATH: process.env.PATH ?? '', BERTH_STATE_DIR: state, HOME: state };
  const r = spawnSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, '--input-type=module', '-e', script], {
    env,
    encoding: 'utf8',
    cwd: state,
  });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^ENGINE_UNAVAILABLE: No Docker engine answers/);
  t.regex(r.stdout, /Install Docker Engine/);
});

test('a broken Dockerfile in the catalog: that image is named, the others build, the old image stays', async (t) => {
  const host = await engineHost();
  const dir = mkdtempSync(join(tmpdir(), 'berth-catalog-'));
  cpSync(join(root, 'runtime', 'images', 'httpd'), join(dir, 'httpd'), { recursive: true });
  cpSync(join(root, 'runtime', 'images', 'redis'), join(dir, 'redis'), { recursive: true });
  writeFileSync(join(dir, 'redis', 'Dockerfile'), 'FROM debian:bookworm\nRUN exit 3\n');
  const before = imageId(host, 'redis:latest');
  const results = await buildCatalog({ host, dir, only: ['httpd', 'redis'] });
  const redis = results.find((r) => r.name === 'redis');
  t.is(redis?.status, 'failed');
  t.regex(redis?.error ?? '', /exit 3|returned a non-zero code: 3/);
  t.is(results.find((r) => r.name === 'httpd')?.status, 'unchanged', 'the good image is untouched (same recipe)');
  t.is(imageId(host, 'redis:latest'), before, 'the working redis image is kept');
});

test('the mirror port taken by another program: a clear error, and the running mirror is left alone', async (t) => {
  const host = await engineHost();
  const blocker: Server = createServer();
  const port = await new Promise<number>((ok) => blocker.listen(0, '127.0.0.1', () => ok((blocker.address() as { port: number }).port)));
  try {
    const err = await t.throwsAsync(startMirror({ host, port }));
    t.true(err instanceof MirrorError);
    t.regex(err!.message, new RegExp(`Port 127.0.0.1:${port} is already taken.*BERTH_MIRROR_PORT`));
    const still = spawnSync('docker', ['inspect', '-f', '{{.State.Running}}', 'berth-mirror'], {
      env: { ...process.env, DOCKER_HOST: host },
      encoding: 'utf8',
    });
    t.is(still.stdout.trim(), 'true');
    t.true((await fetch('http://127.0.0.1:5000/v2/')).ok, 'the mirror still answers on its own port');
  } finally {
    blocker.close();
  }
});
