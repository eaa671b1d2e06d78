// The workshop routes' contract (contract.ts): instructors' routes under /api/workshops (admin token), learners'
// joining and progress. routes.ts mounts these; the OpenAPI document, the README's table and the site's client
// are made from them.
import { z } from 'zod';
import { ENGINE, SESSION, createdSchema, replaySchema, terminalQuery } from '../api.ts';
import { parseBytes } from '../config.ts';
import { contract, errors, type RouteDef } from '../contract.ts';

const iso = z.string().describe('an ISO 8601 time');
const lessonId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,80}$/, 'a lesson id such as 02-first-containers');
const itemId = z.string().regex(/^[A-Za-z0-9][\w.-]{0,80}$/, 'an id of letters, digits, - _ .');
const when = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));

// ---- what comes in ----
const limits = z.strictObject({
  memory: z
    .string()
    .regex(/^\d+(\.\d+)?\s*[kKmMgG]?i?[bB]?$/, 'a size such as 512m or 2g')
    .transform(parseBytes)
    .optional(),
  cpus: z.number().positive().max(64).optional(),
  pids: z.number().int().min(64).max(1_000_000).optional(),
});
export const createBody = z.strictObject({
  title: z.string().trim().min(1).max(120),
  lessons: z.array(lessonId).min(1).max(30),
  startsAt: when.optional(),
  endsAt: when,
  capacity: z.number().int().min(1).max(1000),
  expectedLearners: z.number().int().min(0).max(1000).optional(),
  limits: limits.optional(),
  nodesPerLearner: z.number().int().min(1).max(10).optional(),
  stuckMinutes: z
    .number()
    .positive()
    .max(24 * 60)
    .optional(),
});
const patchBody = z.strictObject({
  title: z.string().trim().min(1).max(120).optional(),
  startsAt: when.optional().describe('now, for example, to start at once'),
  endsAt: when.optional(),
  capacity: z.number().int().min(1).max(1000).optional(),
  expectedLearners: z.number().int().min(0).max(1000).optional(),
  stuckMinutes: z
    .number()
    .positive()
    .max(24 * 60)
    .optional(),
});
const displayName = z
  .string()
  .max(200)
  .transform((s) => s.normalize('NFC').trim().replace(/\s+/g, ' '))
  .pipe(
    z
      .string()
      .min(1, 'a name is needed')
      .max(40, 'at most 40 characters')
      .regex(/^[^\p{Cc}\p{Cf}<>]+$/u, 'letters, digits, spaces and punctuation only'),
  );
const joinBody = z.strictObject({
  code: z.string().min(4).max(20),
  name: displayName,
  key: z.string().max(100).optional().describe('the key from an earlier join, to come back after the sandbox went away'),
});
const progressBody = z.strictObject({
  lesson: lessonId,
  step: itemId.optional(),
  checksPassed: z.array(itemId).max(200).optional(),
  quiz: z
    .array(
      z.strictObject({
        id: itemId,
        answer: z.union([z.string().max(500), z.array(z.string().max(200)).max(8)]),
        correct: z.boolean().optional(),
      }),
    )
    .max(200)
    .optional(),
  after: z.number().int().min(0).optional(),
});
const messageBody = z.strictObject({ text: z.string().trim().min(1).max(1000) });
const prewarmBody = z.strictObject({ expectedLearners: z.number().int().min(0).max(1000).optional() });
const learnerReplayBody = z.strictObject({ lesson: z.string().min(1).max(100), step: z.string().min(1).max(100), fresh: z.boolean().default(true) });
/** A message cursor: an id; anything else reads as 0 (all messages). */
const after = z.object({ after: z.string().optional().describe('only messages after this id') });

// ---- what goes out ----
const state = z.enum(['scheduled', 'open', 'running', 'ended']);
export const workshopSchema = z
  .strictObject({
    id: z.string(),
    code: z.string(),
    title: z.string(),
    lessons: z.array(z.string()),
    startsAt: iso,
    endsAt: iso,
    capacity: z.number().int(),
    expectedLearners: z.number().int(),
    nodesPerLearner: z.number().int(),
    stuckMinutes: z.number(),
    limits: z.strictObject({ memoryBytes: z.number(), cpus: z.number(), pids: z.number().int(), diskBytes: z.number() }),
    state,
    createdAt: iso,
    endedAt: iso.nullable(),
    endReason: z.string().nullable(),
    seated: z.number().int(),
    learners: z.number().int(),
    joinUrl: z.string(),
  })
  .meta({ title: 'Workshop' });
export const poolSchema = z.strictObject({ target: z.number().int(), ready: z.number().int(), starting: z.number().int() });
const fullSchema = workshopSchema.extend({ pool: poolSchema }).meta({ title: 'WorkshopWithPool' });
export const learnerRowSchema = z
  .strictObject({
    id: z.string(),
    name: z.string(),
    lesson: z.string().nullable(),
    step: z.string().nullable(),
    lessonTitle: z.string().nullable(),
    stepTitle: z.string().nullable(),
    checksPassed: z.number().int(),
    checksVerified: z.number().int(),
    quizAnswered: z.number().int(),
    joinedAt: iso,
    lastActivityAt: iso,
    lastProgressAt: iso.nullable(),
    sandbox: z
      .enum(['joining', 'ready', 'resetting', 'gone', 'removed', 'lost'])
      .describe(
        'lost: the machine running the sandbox went away (an Incus cluster member offline), or was drained for maintenance (maintenanceAt set); the learner rejoins for a new one',
      ),
    maintenanceAt: iso
      .nullable()
      .describe("when the sandbox's machine goes down for maintenance (the sandbox ends then, or sooner once unused), or went down (sandbox lost)"),
    stuck: z.boolean(),
  })
  .meta({ title: 'LearnerRow' });
export const messageSchema = z.strictObject({ id: z.number().int(), text: z.string(), at: iso });
export const capacitySchema = z
  .strictObject({
    measuredAt: iso,
    sample: z.strictObject({ source: z.enum(['pool', 'probe']), engines: z.number().int(), idleMemoryBytes: z.number(), idleDiskBytes: z.number().nullable() }),
    host: z.strictObject({
      cpus: z.number().int(),
      memoryTotalBytes: z.number(),
      memoryAvailableBytes: z.number(),
      reserveBytes: z.number(),
      diskFreeBytes: z.number(),
      machines: z
        .array(
          z.strictObject({
            name: z.string(),
            cpus: z.number().int(),
            memoryTotalBytes: z.number(),
            memoryAvailableBytes: z.number(),
            diskFreeBytes: z.number().nullable(),
          }),
        )
        .optional()
        .describe('where nodes run on other machines (a remote Incus, each member of a cluster): the figures above are their sums'),
    }),
    shape: z.strictObject({
      nodesPerLearner: z.number().int(),
      limits: z.strictObject({ memoryBytes: z.number(), nanoCpus: z.number(), pids: z.number().int() }),
      diskBytesPerNode: z.number(),
    }),
    now: z.strictObject({ sandboxes: z.number().int(), poolReady: z.number().int(), seated: z.number().int() }),
    fits: z.strictObject({ idleMemory: z.number().int(), disk: z.number().int().nullable(), serverCap: z.number().int(), memoryLimit: z.number().int() }),
    more: z.number().int(),
    holds: z.number().int(),
    enough: z.boolean(),
    pool: poolSchema,
  })
  .meta({ title: 'Capacity' });
export const learnerViewSchema = z
  .strictObject({ id: z.string(), code: z.string(), title: z.string(), lessons: z.array(z.string()), startsAt: iso, endsAt: iso, state })
  .meta({ title: 'LearnerWorkshop' });
export const resetSchema = z.strictObject({ sandbox: z.literal('ready'), ms: z.number() });

// ---- errors ----
const ADMIN = errors({ 401: ['UNAUTHORIZED'], 404: ['WORKSHOP_NOT_FOUND'] });
const LEARNER = errors(ADMIN, { 404: ['LEARNER_NOT_FOUND'] });
const BODY = errors({ 400: ['VALIDATION_FAILED'], 413: ['BODY_TOO_LARGE'] });
const JOINING = errors({ 404: ['JOIN_CODE_INVALID'], 429: ['RATE_LIMITED'] });
/** A workshop's download or stream that a browser opens by itself (no header): the admin token or ?ticket=. */
const ticketed = (media: string) =>
  ({ auth: 'admin-or-ticket', query: z.object({ ticket: z.string().optional() }), responses: { 200: { media } }, errors: ADMIN }) as const;
/** An instructor's change to a workshop: a JSON body of up to 64 KiB, refused with 409 once the workshop has ended. */
const change = <B extends z.ZodType, R extends RouteDef['responses']>(summary: string, body: B, responses: R) =>
  ({ summary, auth: 'admin', body, maxBody: 64 * 1024, responses, errors: errors(ADMIN, BODY, { 409: ['WORKSHOP_ENDED'] }) }) as const;

export const workshopRoutes = contract({
  'POST /api/workshops': {
    summary: 'Create a workshop (instructor): 201 with its 6-letter code and join link',
    auth: 'admin',
    body: createBody,
    maxBody: 64 * 1024,
    responses: { 201: fullSchema },
    errors: errors(BODY, { 401: ['UNAUTHORIZED'] }),
  },
  'GET /api/workshops': {
    summary: 'List workshops',
    auth: 'admin',
    responses: { 200: z.strictObject({ workshops: z.array(workshopSchema) }) },
    errors: { 401: ['UNAUTHORIZED'] },
  },
  'GET /api/workshops/:id': {
    summary: 'A workshop with its learner rows and messages',
    auth: 'admin',
    responses: { 200: fullSchema.extend({ learnerRows: z.array(learnerRowSchema), messages: z.array(messageSchema) }) },
    errors: ADMIN,
  },
  'PATCH /api/workshops/:id': change('Change title, startsAt (now, to start at once), endsAt, capacity, expectedLearners or stuckMinutes', patchBody, {
    200: fullSchema,
  }),
  'POST /api/workshops/:id/end': {
    summary: 'End now: every learner sandbox is removed, the results stay (the reaper does the same at endsAt)',
    auth: 'admin',
    responses: { 200: fullSchema },
    errors: ADMIN,
  },
  'GET /api/workshops/:id/capacity': {
    summary: 'How many learner sandboxes of this shape the host can hold, measured (refresh=1 measures again)',
    auth: 'admin',
    query: z.object({ refresh: z.string().optional().describe('1: measure again') }),
    responses: { 200: capacitySchema },
    errors: errors(ADMIN, ENGINE, { 501: ['NOT_MEASURABLE'] }),
  },
  'POST /api/workshops/:id/prewarm': change(
    'Grow the warm pool toward the expected head count now (it also grows by itself from BERTH_WORKSHOP_PREWARM_MIN before the start)',
    prewarmBody,
    { 200: z.strictObject({ pool: poolSchema }) },
  ),
  'POST /api/workshops/:id/tickets': {
    summary: 'A one-minute, single-use ticket: ?ticket= stands in for the admin header on events, results.csv and the instructor terminal',
    auth: 'admin',
    responses: { 201: z.strictObject({ ticket: z.string(), expiresAt: iso }) },
    errors: ADMIN,
  },
  'POST /api/workshops/:id/messages': change("Broadcast a message to every learner (pushed on their session's events stream)", messageBody, {
    201: messageSchema,
  }),
  'GET /api/workshops/:id/messages': {
    summary: 'The broadcasts so far',
    auth: 'admin',
    query: after,
    responses: { 200: z.strictObject({ messages: z.array(messageSchema) }) },
    errors: ADMIN,
  },
  'GET /api/workshops/:id/learners/:learner': {
    summary: 'One learner: their row (with lessonTitle, stepTitle), every check and quiz answer (correct as judged by the server)',
    auth: 'admin',
    responses: {
      200: learnerRowSchema.extend({
        sessionId: z.string().nullable(),
        checks: z.array(
          z.strictObject({
            lesson: z.string(),
            checkId: z.string(),
            passed: z.boolean(),
            verified: z.boolean(),
            attempts: z.number().int(),
            firstPassedAt: z.number().nullable(),
            lastAt: z.number(),
          }),
        ),
        quiz: z.array(z.strictObject({ lesson: z.string(), question: z.string(), answer: z.string(), correct: z.boolean().nullable(), at: z.number() })),
      }),
    },
    errors: LEARNER,
  },
  'GET /api/workshops/:id/learners/:learner/tabs': {
    summary: "The learner's nodes with their open terminal tabs (for the instructor terminal)",
    auth: 'admin',
    responses: { 200: z.strictObject({ nodes: z.array(z.strictObject({ name: z.string(), tabs: z.array(z.string()) })) }) },
    errors: LEARNER,
  },
  'POST /api/workshops/:id/learners/:learner/reset': {
    summary: "Rebuild the learner's sandbox under the same session and token",
    auth: 'admin',
    responses: { 200: resetSchema },
    errors: errors(LEARNER, ENGINE, { 409: ['NO_SANDBOX', 'WORKSHOP_ENDED', 'CONFLICT'] }),
  },
  'POST /api/workshops/:id/learners/:learner/replay': {
    summary: 'Skip a learner to a step: their sandbox is rebuilt (unless fresh is false), then replayed as by their own Skip button',
    auth: 'admin',
    body: learnerReplayBody,
    maxBody: 4 * 1024,
    responses: { 202: replaySchema },
    errors: errors(LEARNER, BODY, ENGINE, {
      404: ['LESSON_NOT_FOUND', 'STEP_NOT_FOUND'],
      409: ['NO_SANDBOX', 'REPLAY_RUNNING', 'NODES_MISSING', 'WORKSHOP_ENDED', 'CONFLICT'],
    }),
  },
  'GET /api/workshops/:id/learners/:learner/replay': {
    summary: "The learner's last replay",
    auth: 'admin',
    responses: { 200: replaySchema },
    errors: errors(LEARNER, { 404: ['REPLAY_NOT_FOUND'], 409: ['NO_SANDBOX'] }),
  },
  'GET /api/workshops/:id/learners/:learner/terminal': {
    summary:
      'WebSocket (berth.v1): the learner\'s terminal tab, read-only (INPUT dropped) unless takeover=1; `as` is shown to the learner ("as is watching / has taken over"); credential: subprotocol bearer.<admin token> or ?ticket=',
    auth: 'admin-subprotocol-or-ticket',
    upgrade: true,
    query: terminalQuery.extend({
      takeover: z.string().optional().describe('1: type into the tab'),
      as: z.string().optional().describe('the instructor name the learner sees'),
      ticket: z.string().optional(),
    }),
    responses: { 101: null },
    errors: { 403: ['FORBIDDEN_ORIGIN'] },
  },
  'GET /api/workshops/:id/results.csv': {
    summary: 'Results, one CSV row per learner',
    ...ticketed('text/csv'),
  },
  'GET /api/workshops/:id/events': {
    summary: 'Server-sent events: snapshot, then learner rows, workshop and message events',
    doc: 'Server-Sent Events: `snapshot`, then `learner` rows `{name, lesson, step, checksPassed, checksVerified, lastActivityAt, sandbox, maintenanceAt, stuck}`, `workshop`, `message`',
    ...ticketed('text/event-stream'),
  },
  'GET /api/join/:code': {
    summary: 'What a join code leads to: title, times, seats left (no token)',
    auth: 'none',
    responses: { 200: learnerViewSchema.extend({ seatsLeft: z.number().int() }) },
    errors: JOINING,
  },
  'POST /api/join': {
    summary: 'Join a workshop with its code and a display name (no account); returns a session',
    auth: 'none',
    body: joinBody,
    maxBody: 64 * 1024,
    responses: {
      201: z.strictObject({
        learner: z.strictObject({ id: z.string(), name: z.string(), key: z.string() }),
        workshop: learnerViewSchema,
        session: createdSchema,
      }),
    },
    errors: errors(BODY, JOINING, ENGINE, {
      409: ['WORKSHOP_FULL', 'NAME_TAKEN', 'WORKSHOP_NOT_OPEN'],
      410: ['WORKSHOP_ENDED'],
      500: ['SANDBOX_FAILED'],
      503: ['OUT_OF_CAPACITY', 'HOST_DISK_FULL'],
    }),
  },
  'GET /api/sessions/:id/workshop': {
    summary: "The learner's workshop and the broadcasts after ?after= (the site gets both pushed on events; this stays for other clients)",
    auth: 'session',
    query: after,
    responses: {
      200: z.strictObject({ workshop: learnerViewSchema, learner: z.strictObject({ id: z.string(), name: z.string() }), messages: z.array(messageSchema) }),
    },
    errors: errors(SESSION, { 404: ['NOT_IN_WORKSHOP'] }),
  },
  'POST /api/sessions/:id/workshop/reset': {
    summary: 'A workshop learner rebuilds their own sandbox in place (same session and token), results kept',
    auth: 'session',
    responses: { 200: resetSchema },
    errors: errors(SESSION, ENGINE, { 404: ['NOT_IN_WORKSHOP'], 409: ['NO_SANDBOX', 'CONFLICT', 'WORKSHOP_ENDED'] }),
  },
  'POST /api/sessions/:id/progress': {
    summary: "Record a workshop learner's progress (lesson, step, checks passed, quiz answers); answers with the broadcasts after `after`",
    auth: 'session',
    body: progressBody,
    maxBody: 64 * 1024,
    responses: { 200: z.strictObject({ recorded: z.boolean(), messages: z.array(messageSchema) }) },
    errors: errors(SESSION, BODY, ENGINE, { 404: ['LESSON_NOT_FOUND', 'CHECK_NOT_FOUND'] }),
  },
});
