import { createSession, exec, startServer } from './helpers/server.ts';
import { hostname } from 'node:os';
const s = await startServer({ BERTH_PROVIDER: process.env.P ?? 'incus', BERTH_EGRESS_ALLOW: hostname() });
const c = await createSession(s);
try {
  for (const cmd of process.argv.slice(2)) {
    const r = await exec(s, c, cmd, { timeoutMs: 300000 });
    console.log(`$ ${cmd}\n${r.stdout}${r.stderr}[exit ${r.exitCode}]`);
  }
} finally {
  await s.api(`/api/sessions/${c.id}`, { method: 'DELETE', token: c.token });
  await s.stop();
}
