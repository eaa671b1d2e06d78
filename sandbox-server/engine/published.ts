// What `docker ps` in a learner's engine says it publishes: read by the session manager (ports on request) and
// the Docker provider (ports pushed as containers start and stop).
import type { PublishedPort } from './provider.ts';

/** Ports a learner's engine publishes, from `docker ps --format '{{.ID}}\t{{.Image}}\t{{.Names}}\t{{.Ports}}'`. */
export function parsePublished(psOutput: string): PublishedPort[] {
  const seen = new Map<number, PublishedPort>();
  for (const line of psOutput.split('\n')) {
    const [, image, names, ports] = line.split('\t');
    if (!ports) continue;
    // e.g. "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 127.0.0.1:9000->9000/tcp, 6379/tcp"
    for (const m of ports.matchAll(/(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-f:]*\]|::):(\d+)(?:-\d+)?->\d+(?:-\d+)?\/tcp/g)) {
      // Bound to the node's loopback only: not reachable from outside the node, so not previewable.
      if (m[1].startsWith('127.')) continue;
      const port = Number(m[2]);
      if (!seen.has(port)) seen.set(port, { port, container: names.split(',')[0], image });
    }
  }
  return [...seen.values()].sort((a, b) => a.port - b.port);
}
