// Files the provider writes into a learner node before its first start (agreed with the runtime's init,
// runtime/incus: it reads /etc/berth/node.env, configures eth0, then starts a plain `dockerd`). Pure.

export type NodeConfig = { node: string; ip: string; prefix: number; gateway: string; dns: string; mirrorPort: number | null };

/**
 * The port the host's mirror has on a node's loopback. Not the host's 5000: that is the port every registry
 * tutorial (and lesson 07) runs its own registry on, and `docker run -p 5000:5000 registry` then failed with
 * "address already in use" while `docker push localhost:5000/…` reached the read-only mirror. Above the
 * range the kernel and Docker pick ephemeral ports from (32768–60999), so no `-p 80` lands on it either.
 */
export const NODE_MIRROR_PORT = 65000;

/** Read by the node's init: its name, fixed address, route and resolver. Shell KEY=value lines. */
export function nodeEnv(c: NodeConfig): string {
  return [`BERTH_NODE=${c.node}`, `BERTH_ADDR=${c.ip}/${c.prefix}`, `BERTH_GATEWAY=${c.gateway}`, `BERTH_DNS=${c.dns}`, ''].join('\n');
}

/**
 * The node's dockerd: its own socket for the learner, and the host's mirror on the node's loopback (an Incus
 * proxy device), which Docker trusts over plain HTTP. TCP 2375 for the session's other nodes
 * (`docker -H tcp://node2:2375`, as the lessons teach; only the session's bridge reaches it) is served by the
 * node's init in front of the socket once the engine answers: dockerd itself waits 1 s before a TCP listener
 * without TLS (15 s unless `"tls": false`), which every start would pay.
 */
export function daemonJson(c: NodeConfig): string {
  return `${JSON.stringify(
    {
      hosts: ['unix:///var/run/docker.sock'],
      // The node's root is on btrfs, where dockerd would otherwise choose its btrfs driver: overlay2 is what
      // the lessons show in `docker info` and what the layer-sharing lessons explain.
      'storage-driver': 'overlay2',
      ...(c.mirrorPort ? { 'registry-mirrors': [`http://127.0.0.1:${NODE_MIRROR_PORT}`] } : {}),
      // Container logs count against the node's disk: bounded so a chatty container cannot fill it.
      'log-driver': 'json-file',
      'log-opts': { 'max-size': '10m', 'max-file': '2' },
    },
    null,
    2,
  )}\n`;
}

/** /etc/hosts naming every node of the session, so `node2` resolves in any of them without DNS. */
export function hostsFile(nodes: { node: string; ip: string }[]): string {
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback'];
  for (const n of [...nodes].sort((a, b) => Number(a.node.slice(4)) - Number(b.node.slice(4)))) lines.push(`${n.ip}\t${n.node}`);
  return `${lines.join('\n')}\n`;
}

/** The first IPv4 resolver in a resolv.conf that a node could reach (not the host's loopback), or null. */
export function upstreamResolver(resolvConf: string): string | null {
  return [...resolvConf.matchAll(/^nameserver\s+(\d+\.\d+\.\d+\.\d+)\s*$/gm)].map((m) => m[1]).find((ip) => !ip.startsWith('127.')) ?? null;
}
