// The operator's machine routes' contract (contract.ts): the machines sandboxes run on (an Incus cluster's
// members), and draining one for planned maintenance. index.ts mounts these behind the instructors' admin token;
// the OpenAPI document and the README's table are made from them.
import { z } from 'zod';
import { ENGINE } from '../api.ts';
import { contract, errors } from '../contract.ts';

const iso = z.string().describe('an ISO 8601 time');

// ---- what comes in ----
/** Incus member names: letters, digits, dots and dashes (a host name). */
const machineParams = z.object({ name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/, 'a machine name such as berth-2') });
export const drainBody = z.strictObject({
  minutes: z.number().int().min(1).max(1440).describe("from now until the deadline: every one of this server's sessions still there then is ended"),
});

// ---- what goes out ----
export const machineSchema = z
  .strictObject({
    name: z.string(),
    status: z.string().describe("the engine's word for it (Incus: Online, Offline, Evacuated…)"),
    sessions: z.number().int().describe("this server's sessions on it"),
    drain: z
      .strictObject({
        deadline: iso,
        started: iso,
        drained: z.boolean().describe("none of this server's sessions is left on it: it may be evacuated or shut down"),
      })
      .nullable(),
  })
  .meta({ title: 'Machine' });

// ---- errors ----
const ADMIN = errors({ 401: ['UNAUTHORIZED'], 501: ['NO_MACHINES'] }, ENGINE);
const MACHINE = errors(ADMIN, { 400: ['VALIDATION_FAILED'], 404: ['MACHINE_NOT_FOUND'] });

/** What both drain routes share: a machine named in the path, the admin token, the machine as it is after. */
const onMachine = { auth: 'admin', params: machineParams, responses: { 200: machineSchema } } as const;

export const machineRoutes = contract({
  'GET /api/machines': {
    summary: "The machines sandboxes run on (an Incus cluster's members), with this server's sessions on each and their drains",
    auth: 'admin',
    responses: { 200: z.strictObject({ machines: z.array(machineSchema) }) },
    errors: ADMIN,
  },
  'POST /api/machines/:name/drain': {
    ...onMachine,
    summary:
      "Drain a machine for maintenance: no new sandbox goes there; this server's sessions on it end as soon as they are unused, the rest at the deadline (again: a new deadline)",
    body: drainBody,
    maxBody: 1024,
    errors: errors(MACHINE, { 413: ['BODY_TOO_LARGE'] }),
  },
  'DELETE /api/machines/:name/drain': {
    ...onMachine,
    summary: 'Cancel a drain: new sandboxes may go to the machine again (sessions already ended stay ended)',
    errors: MACHINE,
  },
});
