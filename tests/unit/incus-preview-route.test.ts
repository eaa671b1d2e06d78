// Which way a preview reaches an Incus node (IncusProvider.routed, issue 18): directly where the session's bridge
// is an interface in this server's network namespace and, on a cluster, the node is on this server's member;
// through the relay (socat in the node over an exec) otherwise, or always when told. The bridge is stood in
// for by interfaces every Linux host has (`lo`) or none has; incusd by a stand-in answering GET /1.0.
import test from 'ava';
import type { IncusClient } from '../../sandbox-server/engine/incus/client.ts';
import { IncusProvider } from '../../sandbox-server/engine/incus/provider.ts';

function provider({ clustered = false, remote = false, relay = 'auto' as 'auto' | 'always', bridge = 'lo' } = {}) {
  const client = {
    remote,
    origin: remote ? 'https://incus.example:8443' : null,
    async get(path: string) {
      if (path === '/1.0') return { environment: { server_clustered: clustered, server_name: clustered ? 'm1' : 'none' } };
      throw new Error(`unexpected GET ${path}`);
    },
  } as unknown as IncusClient;
  const p = new IncusProvider({ client, image: 'x', instance: 'i', previewRelay: relay });
  // The session's bridge as the provider knows it once the session exists (its own or a spare).
  p.bridges.set('s1', bridge);
  return p;
}

test('a single server whose bridge is an interface here: direct; a bridge not here: relayed', async (t) => {
  t.true(await provider().routed('s1', 'none'));
  t.false(await provider({ bridge: 'brnothere0' }).routed('s1', 'none'));
});

test("on a cluster: direct only for a node on this server's member", async (t) => {
  t.true(await provider({ clustered: true }).routed('s1', 'm1'));
  t.false(await provider({ clustered: true }).routed('s1', 'm2'), "another member's node is behind its own copy of the bridge");
});

test('a remote Incus, or previewRelay always: relayed whatever this host has', async (t) => {
  t.false(await provider({ remote: true }).routed('s1', 'none'));
  t.false(await provider({ relay: 'always' }).routed('s1', 'none'));
});
