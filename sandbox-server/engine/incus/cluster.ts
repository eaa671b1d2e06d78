// What Berth needs to know about the Incus it talks to beyond one node: whether it is remote or a cluster,
// its members, and what the server cannot do yet on any machine but its own (the refusal at start).
import type { IncusClient } from './client.ts';

export type Member = { name: string; status: string };

/** The members of the cluster incusd belongs to, or null when it is a single server. */
export async function clusterMembers(client: IncusClient): Promise<Member[] | null> {
  const c = await client.get<{ enabled?: boolean }>('/1.0/cluster');
  if (!c.enabled) return null;
  const members = await client.get<{ server_name: string; status: string }[]>('/1.0/cluster/members?recursion=1');
  return members.map((m) => ({ name: m.server_name, status: m.status }));
}

// The parts of the server that act on this host's own view of learner nodes. Each needs a member-side
// counterpart (Incus network ACLs on the members, previews relayed through Incus, a mirror per member)
// before nodes may run on another machine.
const HOST_ONLY =
  'these still act on this host only: the sandbox firewall and DNS responder (BERTH_EGRESS_POLICY; they keep learners ' +
  "off their node's host and off other sessions), previews (they connect to node addresses routed on this host) and the registry " +
  "mirror (reached on the node host's loopback)";

/**
 * Why the server must not run learner nodes through this client, or null when it may: nodes on another
 * machine would escape the host firewall. The provider itself works through a remote server (sessions,
 * exec, terminals, files: tests/integration/incus-remote.test.ts); the server refuses to start instead.
 */
export const REMOTE_REFUSAL = `BERTH_INCUS_URL: the server cannot run learner nodes on a remote Incus yet: ${HOST_ONLY}. Unset it to use the local incusd.`;

export async function refusal(client: IncusClient): Promise<string | null> {
  if (client.remote) return REMOTE_REFUSAL;
  const members = await clusterMembers(client);
  if (members && members.length > 1) {
    return (
      `BERTH_INCUS_SOCKET: ${client.socketPath} is a member of an Incus cluster of ${members.length}, where nodes may be placed on other members; ` +
      `the server cannot run learner nodes there yet: ${HOST_ONLY}.`
    );
  }
  return null;
}
