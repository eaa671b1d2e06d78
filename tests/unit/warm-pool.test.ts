import test from 'ava';
import { WarmPool } from '../../sandbox-server/sandboxes/pool.ts';
import { FakeProvider } from '../helpers/fake-provider.ts';

const limits = { memoryBytes: 1 << 30, nanoCpus: 1e9, pids: 512, diskBytes: 1 << 30 };

test('drain waits for starts in flight and removes what they made: no node outlives the server', async (t) => {
  const provider = new FakeProvider();
  let open!: () => void;
  provider.gate = new Promise((r) => {
    open = r;
  });
  const pool = new WarmPool({ provider, limits, target: 2, hasRoom: () => true, onError: (err) => t.fail(String(err)) });
  pool.fill();
  t.is(pool.starting, 2);
  let drained = false;
  const draining = pool.drain().then(() => {
    drained = true;
  });
  await new Promise((r) => setImmediate(r));
  t.false(drained, 'drain returned while two starts were still in flight');
  open();
  await draining;
  t.is(provider.created, 2);
  t.is(provider.sandboxes.size, 0, 'a node started during the drain was left behind');
  t.deepEqual(pool.ready, []);
});

test('drain removes the ready sandboxes and starts nothing more', async (t) => {
  const provider = new FakeProvider();
  const pool = new WarmPool({ provider, limits, target: 2, hasRoom: () => true, onError: (err) => t.fail(String(err)) });
  pool.fill();
  await pool.drain();
  pool.fill();
  t.is(pool.starting, 0);
  t.is(provider.sandboxes.size, 0);
});
