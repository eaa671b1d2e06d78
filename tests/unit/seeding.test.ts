import test from 'ava';
import { SandboxManager, SEED_ATTEMPTS } from '../../sandbox-server/sandboxes/manager.ts';
import { Store } from '../../sandbox-server/store.ts';
import { FakeProvider } from '../helpers/fake-provider.ts';

function manager(provider: FakeProvider) {
  const m = new SandboxManager({
    provider,
    store: new Store(':memory:'),
    limits: { memoryBytes: 1 << 30, nanoCpus: 1e9, pids: 512, diskBytes: 1 << 30 },
    poolSize: 0,
    maxSandboxes: 10,
    maxNodes: 5,
    lifetimeMs: 3_600_000,
    extendMs: 1_800_000,
    idleMs: 1_800_000,
    execMaxOutput: 65536,
    seedFiles: () => [{ path: 'lesson/hello.txt', content: Buffer.from('hi\n') }],
  });
  const errors: string[] = [];
  m.listen((event, d) => {
    if (event === 'error') errors.push(`${d.reason}: ${(d.err as Error).message}`);
  });
  return { m, errors };
}

test("a failed unpack of the lesson files is tried again, and each failure is logged with tar's words", async (t) => {
  const provider = new FakeProvider();
  let tries = 0;
  provider.answer = (call) => (call.cmd.startsWith('tar -x') && ++tries === 1 ? { exitCode: 2, stderr: 'tar: short read' } : {});
  const { m, errors } = manager(provider);
  const s = await m.create({ lesson: 'any' });
  t.is(tries, 2);
  t.is(provider.sandboxes.size, 1);
  t.deepEqual(errors, [`seeding node1 of ${s.id}, attempt 1 of ${SEED_ATTEMPTS}: tar exited with 2: tar: short read`]);
});

test('after the last failed attempt the sandbox is removed and the learner gets SANDBOX_FAILED', async (t) => {
  const provider = new FakeProvider();
  provider.answer = (call) => (call.cmd.startsWith('tar -x') ? { exitCode: 2, stderr: 'tar: no space' } : {});
  const { m, errors } = manager(provider);
  const err = await t.throwsAsync(m.create({ lesson: 'any' }));
  t.is((err as { code?: string }).code, 'SANDBOX_FAILED');
  t.is(errors.filter((e) => e.includes('tar: no space')).length, SEED_ATTEMPTS);
  t.is(provider.sandboxes.size, 0, 'no half-created sandbox is left behind');
});
