// Removing a sandbox while something else removes it too (the reaper and a DELETE, a workshop's end and a
// learner's reset): Incus runs one stop or delete per instance and answers the second caller "A matching
// non-reusable operation has now succeeded". The instance is stopped or gone then, which is what was asked.
import test from 'ava';
import { IncusError } from '../../sandbox-server/engine/incus/api.ts';
import type { IncusClient } from '../../sandbox-server/engine/incus/client.ts';
import { IncusProvider } from '../../sandbox-server/engine/incus/provider.ts';
import { KEY } from '../../sandbox-server/engine/incus/spec.ts';

const COLLISION = 'A matching non-reusable operation has now succeeded';

/** One node of sandbox `s1`; `fail` says which request answers with `error` (as incusd does, from the operation). */
function fakeIncus(fail: (method: string, path: string) => boolean, error = new IncusError(400, COLLISION)) {
  const log: string[] = [];
  const node = {
    name: 'bs-s1-node1',
    status: 'Running',
    config: { [KEY.managed]: '1', [KEY.role]: 'node', [KEY.instance]: 'i1', [KEY.sandbox]: 's1', [KEY.node]: 'node1' },
  };
  const client = {
    remote: false,
    async get(path: string) {
      if (path.startsWith('/1.0/instances?recursion=1')) return [node];
      if (path.startsWith('/1.0/networks/')) throw new IncusError(404, 'Network not found');
      throw new Error(`unexpected GET ${path}`);
    },
    async run(method: string, path: string) {
      log.push(`${method} ${path}`);
      if (fail(method, path)) throw error;
      return {};
    },
  };
  return { provider: new IncusProvider({ client: client as unknown as IncusClient, image: 'berth-learner', instance: 'i1' }), log };
}

test("a stop that another caller's stop finished counts as stopped: the delete still follows", async (t) => {
  const { provider, log } = fakeIncus((m, p) => m === 'PUT' && p.endsWith('/state'));
  await t.notThrowsAsync(provider.removeSandbox('s1'));
  t.true(log.includes('DELETE /1.0/instances/bs-s1-node1'), log.join('\n'));
});

test("a delete that another caller's delete finished counts as deleted", async (t) => {
  const { provider } = fakeIncus((m, p) => m === 'DELETE' && p.startsWith('/1.0/instances/'));
  await t.notThrowsAsync(provider.removeSandbox('s1'));
});

test('other failures of the delete are still reported', async (t) => {
  const { provider } = fakeIncus((m, p) => m === 'DELETE' && p.startsWith('/1.0/instances/'), new IncusError(500, 'Failed deleting instance storage'));
  await t.throwsAsync(provider.removeSandbox('s1'), { message: /Removing the sandbox/ });
});
