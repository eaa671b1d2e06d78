// What the sandboxes this server gives out are, for lessons whose text depends on it (lessons/FORMAT.md,
// the `sandbox` note) and for the site, which shows only the notes about its server's sandboxes.
import { existsSync } from 'node:fs';
import type { SandboxFacts } from '../lessons/lib/schema.ts';

/** The kernel has IPVS (Swarm's routing mesh and service VIPs need it) once /proc/net/ip_vs exists: built
 *  in, or loaded as a module. A kernel with it as an unloaded module says no until `modprobe ip_vs`. */
export function hostHasIpvs(procNet = '/proc/net'): boolean {
  return existsSync(`${procNet}/ip_vs`);
}

export function sandboxFacts(provider: 'docker' | 'incus', ipvs = hostHasIpvs()): SandboxFacts {
  return { engine: provider === 'incus' ? 'rootful' : 'rootless', ipvs: ipvs ? 'yes' : 'no' };
}
