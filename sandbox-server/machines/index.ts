// The operator's machine routes (api.ts): list the machines, drain one for planned maintenance, cancel a drain.
// A Feature for app.ts, behind the same admin token as the workshop routes; the rules are the session manager's
// (sandboxes/manager.ts), the drain marks the provider's (engine/incus/drain.ts).
import type { Context, Next } from 'hono';
import type { Env, Feature } from '../app.ts';
import { bearer } from '../auth.ts';
import { mountContract } from '../contract.ts';
import { ApiError } from '../errors.ts';
import type { MachineView, SandboxManager } from '../sandboxes/manager.ts';
import type { AdminAuth } from '../workshops/admin-auth.ts';
import { machineRoutes } from './api.ts';

export type MachineDeps = { manager: SandboxManager; auth: AdminAuth; log: { warn: (o: object, m: string) => void } };

const iso = (t: number) => new Date(t).toISOString();
const view = (m: MachineView) => ({ ...m, drain: m.drain && { deadline: iso(m.drain.deadline), started: iso(m.drain.started), drained: m.drain.drained } });

export function createMachines({ manager, auth, log }: MachineDeps): Feature {
  return {
    routes: machineRoutes,
    mount(app, { limitBody }) {
      async function admin(c: Context<Env>, next: Next) {
        if (auth.check(bearer(c.req.header('authorization')))) return next();
        throw new ApiError(401, 'UNAUTHORIZED', 'Machine routes need an admin token: Authorization: Bearer <token> (learner tokens do not work here).');
      }
      app.use('/api/machines', admin);
      app.use('/api/machines/*', admin);
      const on = mountContract(app, machineRoutes, limitBody);
      on('GET /api/machines', async (_c, io) => io.json(200, { machines: (await manager.machineList()).map(view) }));
      on('POST /api/machines/:name/drain', async (_c, io) => {
        const { name } = io.params();
        const { minutes } = await io.body();
        const m = await manager.startDrain(name, manager.now() + minutes * 60_000);
        log.warn({ machine: name, deadline: iso(m.drain?.deadline ?? 0), sessions: m.sessions }, `machine ${name}: drain started`);
        return io.json(200, view(m));
      });
      on('DELETE /api/machines/:name/drain', async (_c, io) => {
        const { name } = io.params();
        const m = await manager.cancelDrain(name);
        log.warn({ machine: name }, `machine ${name}: drain cancelled`);
        return io.json(200, view(m));
      });
    },
  };
}
