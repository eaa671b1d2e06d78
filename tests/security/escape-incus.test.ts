// The escape suite on the Incus provider (system containers with a rootful dockerd each): see escape-suite.ts.
// Needs incusd with the learner image (runtime/incus); without it the suite is skipped, not passed.
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { escapeSuite } from './escape-suite.ts';

const SOCKET = process.env.BERTH_INCUS_SOCKET ?? '/var/lib/incus/unix.socket';

escapeSuite({
  settings: { BERTH_PROVIDER: 'incus', BERTH_SANDBOX_MEMORY: '1g', BERTH_SANDBOX_PIDS: '1024', BERTH_SANDBOX_DISK: '4g', BERTH_EGRESS_ALLOW: hostname() },
  unavailable: existsSync(SOCKET) ? null : `no Incus socket at ${SOCKET}`,
  learnerOwnsNode: true,
});
