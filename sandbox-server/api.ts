// The core API's contract (contract.ts): every route of app.ts with what it takes, what it answers and the
// errors it may give. app.ts mounts these; the OpenAPI document, the README's table and the site's client
// are made from them. Change a route here first.
import { z } from 'zod';
import { SANDBOX_FACTS } from '../lessons/lib/schema.ts';
import { contract, errors } from './contract.ts';

const iso = z.string().describe('an ISO 8601 time');
const lessonId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,80}$/);
const nodeName = z.string().max(32);

// ---- what comes in ----
export const createBody = z.strictObject({ lesson: lessonId.optional(), nodes: z.number().int().min(1).max(10).optional() });
export const execBody = z.strictObject({
  cmd: z
    .string()
    .min(1)
    .max(64 * 1024),
  node: nodeName.optional(),
  timeoutMs: z
    .number()
    .int()
    .min(100)
    .max(10 * 60_000)
    .optional(),
});
const checkBody = z.strictObject({ lesson: z.string().min(1).max(100) });
export const replayBody = z.strictObject({ lesson: z.string().min(1).max(100), step: z.string().min(1).max(100) });
export const fileQuery = z.object({
  path: z.string().max(4096).default('').describe('relative to the workspace /home/learner'),
  node: nodeName.optional(),
});
const writeBody = z.strictObject({ content: z.string(), encoding: z.enum(['utf8', 'base64']).default('utf8') });
const mkdirBody = z.strictObject({ type: z.literal('dir') });
const shareBody = z.strictObject({ shared: z.boolean() });
const answerBody = z.strictObject({ answer: z.array(z.number().int().min(0).max(20)).min(1).max(8) });
/** The terminal's query, read by terminal/endpoint.ts for learners' and instructors' terminals alike. */
export const terminalQuery = z.object({
  node: nodeName.optional(),
  tab: z
    .string()
    .regex(/^[A-Za-z0-9-]{1,16}$/)
    .default('1'),
  cols: z.coerce.number().int().min(1).max(1000).default(80),
  rows: z.coerce.number().int().min(1).max(500).default(24),
});

// ---- what goes out ----
export const createdSchema = z.strictObject({ id: z.string(), token: z.string(), expiresAt: iso, nodes: z.array(z.strictObject({ name: z.string() })) });
export const sessionSchema = z
  .strictObject({
    id: z.string(),
    lesson: z.string().nullable(),
    createdAt: iso,
    expiresAt: iso,
    idleExpiresAt: iso.nullable().describe('null for a workshop session (no idle limit)'),
    nodes: z.array(z.strictObject({ name: z.string(), state: z.string() })),
    workshop: z.literal(true).optional(),
    maintenanceAt: iso
      .optional()
      .describe("while the sandbox's machine is being drained for maintenance: when it goes down (the sandbox ends then, or sooner once unused)"),
  })
  .meta({ title: 'Session' });
export const execResultSchema = z.strictObject({
  exitCode: z.number().int(),
  stdout: z.string(),
  stderr: z.string(),
  durationMs: z.number(),
  truncated: z.boolean(),
});
export const checkResultSchema = z.strictObject({ id: z.string(), passed: z.boolean(), message: z.string(), detail: z.string().optional() });
export const replaySchema = z
  .strictObject({
    lesson: z.string(),
    step: z.string().describe('the step whose start the sandbox is brought to'),
    state: z.enum(['running', 'done', 'failed']),
    steps: z.array(z.strictObject({ id: z.string(), title: z.string(), state: z.enum(['pending', 'running', 'done', 'failed']), ms: z.number().optional() })),
    startedAt: iso,
    ms: z.number().optional(),
    failedAt: z.string().optional(),
    problem: z.string().optional().describe("the failing command's exit status and last lines of output"),
  })
  .meta({ title: 'Replay' });
export const referenceSchema = z.strictObject({
  lesson: z.string(),
  step: z.string(),
  commands: z.array(z.strictObject({ node: z.string(), text: z.string(), interactive: z.boolean() })),
});
const entry = z.strictObject({ name: z.string(), type: z.enum(['file', 'dir', 'symlink', 'other']), size: z.number(), mtime: iso });
export const fileViewSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('dir'), path: z.string(), entries: z.array(entry) }),
  z.strictObject({ type: z.literal('file'), path: z.string(), size: z.number(), encoding: z.enum(['utf8', 'base64']), content: z.string() }),
]);
const links = { url: z.string(), pathUrl: z.string() };
export const portSchema = z
  .strictObject({ node: z.string(), port: z.number().int(), container: z.string(), image: z.string(), shared: z.boolean(), ...links })
  .meta({ title: 'Port' });
export const verdictSchema = z.strictObject({
  id: z.string(),
  correct: z.boolean(),
  multiple: z.boolean(),
  rightCount: z.number().int(),
  chosenRight: z.number().int(),
  chosenWrong: z.number().int(),
  explanations: z.array(z.strictObject({ option: z.number().int(), correct: z.boolean(), html: z.string() })),
});
export const sandboxFactsSchema = z.strictObject({ engine: z.enum(SANDBOX_FACTS.engine), ipvs: z.enum(SANDBOX_FACTS.ipvs) });

// ---- the errors most routes share ----
/** A session route: no token is 401; an unknown session and a wrong token look the same (404); a session whose machine went away
 *  or was drained for maintenance is 503. */
export const SESSION = errors({ 401: ['UNAUTHORIZED'], 404: ['SESSION_NOT_FOUND'], 503: ['MACHINE_LOST', 'MACHINE_MAINTENANCE'] });
/** Anything that reaches into a node: the engine may fail or be away. */
export const ENGINE = errors({ 502: ['SANDBOX_FAILED'], 503: ['ENGINE_UNAVAILABLE', 'SANDBOX_FAILED'] });
export const BODY = errors({ 400: ['VALIDATION_FAILED'], 413: ['BODY_TOO_LARGE'] });
const NODE = errors({ 404: ['NODE_NOT_FOUND'] });
const FILES = errors(SESSION, ENGINE, NODE, { 400: ['VALIDATION_FAILED', 'PATH_OUTSIDE_WORKSPACE'], 404: ['FILE_NOT_FOUND'], 500: ['SANDBOX_FAILED'] });

export const sessionRoutes = contract({
  'GET /healthz': { summary: 'Liveness', auth: 'none', responses: { 200: z.strictObject({ ok: z.literal(true) }) }, errors: {} },
  'GET /metrics': {
    summary: 'Prometheus metrics',
    auth: 'metrics',
    doc: 'Prometheus metrics (`Authorization: Bearer` a metrics token, `BERTH_METRICS_TOKEN_SHA256`, or an instructor token)',
    responses: { 200: { media: 'text/plain' } },
    errors: { 401: ['UNAUTHORIZED'] },
  },
  'GET /api/openapi.json': {
    summary: 'This API as an OpenAPI 3.1 document, made from the same contract',
    auth: 'none',
    responses: { 200: z.looseObject({ openapi: z.string(), paths: z.record(z.string(), z.unknown()) }) },
    errors: {},
  },
  'GET /api/sandbox-facts': {
    summary: "What this server's sandboxes are, for lesson notes that depend on it",
    auth: 'none',
    doc: "what this server's sandboxes are; lesson pages show only the `sandbox` notes about them",
    responses: { 200: sandboxFactsSchema },
    errors: {},
  },
  'POST /api/sessions': {
    summary: "Create a session: a sandbox with one or more learner engines; seeds the lesson's files",
    auth: 'none',
    body: createBody,
    maxBody: 16 * 1024,
    responses: { 201: createdSchema },
    errors: errors(BODY, ENGINE, { 404: ['LESSON_NOT_FOUND'], 429: ['RATE_LIMITED'], 500: ['SANDBOX_FAILED'], 503: ['OUT_OF_CAPACITY', 'HOST_DISK_FULL'] }),
  },
  'POST /api/lessons/:lesson/quizzes/:quiz/answer': {
    summary: 'Judge a self-check answer (option numbers); the explanations of the chosen options come back',
    auth: 'none',
    doc: 'judges an answer (option numbers); the explanations of the chosen options come back; lesson pages carry no answers',
    body: answerBody,
    maxBody: 1024,
    responses: { 200: verdictSchema },
    errors: errors(BODY, { 404: ['NOT_FOUND', 'LESSON_NOT_FOUND', 'QUIZ_NOT_FOUND'] }),
  },
  'GET /api/sessions/:id': { summary: 'Describe a session', auth: 'session', responses: { 200: sessionSchema }, errors: SESSION },
  'DELETE /api/sessions/:id': { summary: 'Remove a session and its sandbox', auth: 'session', responses: { 204: null }, errors: errors(SESSION, ENGINE) },
  'POST /api/sessions/:id/extend': {
    summary: 'Extend the lifetime',
    auth: 'session',
    doc: "extends the lifetime; not a workshop's sandbox (it lasts as long as the workshop; `GET` shows `idleExpiresAt: null` for it)",
    responses: { 200: z.strictObject({ expiresAt: iso, idleExpiresAt: iso.nullable() }) },
    errors: errors(SESSION, { 409: ['WORKSHOP_SESSION'] }),
  },
  'POST /api/sessions/:id/exec': {
    summary: 'Run a non-interactive command as the learner (bounded output and time)',
    auth: 'session',
    doc: 'runs a command as the learner, output capped (1 MiB each); each command runs exactly once, also when the server retries it after a transient engine failure (Incus, `engine/incus/exec.ts`)',
    body: execBody,
    maxBody: 80 * 1024,
    responses: { 200: execResultSchema },
    errors: errors(SESSION, BODY, ENGINE, NODE, { 408: ['EXEC_TIMEOUT'] }),
  },
  'POST /api/sessions/:id/checks/:checkId': {
    summary: 'Run a lesson check against the sandbox',
    auth: 'session',
    body: checkBody,
    maxBody: 4 * 1024,
    responses: { 200: checkResultSchema },
    errors: errors(SESSION, BODY, ENGINE, NODE, { 404: ['LESSON_NOT_FOUND', 'CHECK_NOT_FOUND'], 408: ['EXEC_TIMEOUT'] }),
  },
  'POST /api/sessions/:id/replay': {
    summary: 'Skip to a step: replay the reference commands of every earlier step in the background (best on a fresh sandbox)',
    auth: 'session',
    doc: '**skip to a step**, replaying the reference commands (run and verify blocks, exercise solutions) of every earlier step in the background',
    body: replayBody,
    maxBody: 4 * 1024,
    responses: { 202: replaySchema },
    errors: errors(SESSION, BODY, { 404: ['LESSON_NOT_FOUND', 'STEP_NOT_FOUND'], 409: ['REPLAY_RUNNING', 'NODES_MISSING'] }),
  },
  'GET /api/sessions/:id/replay': {
    summary: "The last replay's progress or outcome",
    auth: 'session',
    doc: "the last replay: `state` `running`/`done`/`failed`, each step's state and `ms`, `failedAt` and `problem` on failure",
    responses: { 200: replaySchema },
    errors: errors(SESSION, { 404: ['REPLAY_NOT_FOUND'] }),
  },
  'GET /api/sessions/:id/lessons/:lesson/steps/:step/reference': {
    summary: "Show me: the step's reference commands (run blocks, or an exercise's solution) for the page to type into the terminal",
    auth: 'session',
    responses: { 200: referenceSchema },
    errors: errors(SESSION, { 404: ['LESSON_NOT_FOUND', 'STEP_NOT_FOUND'] }),
  },
  'GET /api/sessions/:id/terminal': {
    summary: 'WebSocket terminal (subprotocols berth.v1 and bearer.<token>); the protocol is in the README',
    auth: 'session-subprotocol',
    upgrade: true,
    query: terminalQuery,
    responses: { 101: null },
    errors: { 403: ['FORBIDDEN_ORIGIN'] },
  },
  'POST /api/sessions/:id/nodes': {
    summary: 'Add the next node (node2, node3, ... up to BERTH_MAX_NODES), reachable by name from the others',
    auth: 'session',
    responses: { 201: z.strictObject({ name: z.string() }) },
    errors: errors(SESSION, ENGINE, { 409: ['CONFLICT'], 429: ['RATE_LIMITED'], 503: ['OUT_OF_CAPACITY', 'HOST_DISK_FULL'] }),
  },
  'DELETE /api/sessions/:id/nodes/:node': {
    summary: 'Remove a node; the last one stays',
    auth: 'session',
    responses: { 204: null },
    errors: errors(SESSION, ENGINE, NODE, { 409: ['CONFLICT'], 429: ['RATE_LIMITED'] }),
  },
  'GET /api/sessions/:id/files': {
    summary: 'List a folder or read a file (bytes that are not UTF-8 come base64-encoded)',
    auth: 'session',
    query: fileQuery,
    responses: { 200: fileViewSchema },
    errors: errors(FILES, { 413: ['FILE_TOO_LARGE'] }),
  },
  'PUT /api/sessions/:id/files': {
    summary: 'Write a file as the learner (parents created)',
    auth: 'session',
    query: fileQuery,
    body: writeBody,
    responses: { 200: z.strictObject({ path: z.string(), size: z.number().int() }) },
    errors: errors(FILES, BODY, { 409: ['CONFLICT'], 413: ['FILE_TOO_LARGE'] }),
  },
  'POST /api/sessions/:id/files': {
    summary: 'Create a folder',
    auth: 'session',
    query: fileQuery,
    body: mkdirBody,
    maxBody: 1024,
    responses: { 201: z.strictObject({ path: z.string() }) },
    errors: errors(FILES, BODY, { 409: ['CONFLICT'] }),
  },
  'DELETE /api/sessions/:id/files': { summary: 'Delete a file, symlink or folder', auth: 'session', query: fileQuery, responses: { 204: null }, errors: FILES },
  'GET /api/sessions/:id/archive': {
    summary: 'A folder (default: the workspace) as a streamed tar; engine data and .cache left out',
    auth: 'session',
    query: fileQuery,
    responses: { 200: { media: 'application/x-tar' } },
    errors: errors(FILES, { 404: ['NOT_FOUND'] }),
  },
  'GET /api/sessions/:id/ports': {
    summary: "Published ports of the session's engines, with preview links",
    auth: 'session',
    responses: { 200: z.strictObject({ ports: z.array(portSchema) }) },
    errors: errors(SESSION, ENGINE),
  },
  'GET /api/sessions/:id/events': {
    summary: "Server-sent events for the learner's page",
    auth: 'session',
    doc: 'Server-Sent Events: `hello {ports:"push"|"poll"}`, `ports {ports}` whenever the node\'s engine starts or stops a container (from its own `docker events`), and for a workshop learner `workshop {workshop, learner}`, `message` (broadcasts after `after`), `watch {watching, takeover, by}`; `maintenance {at}` when the sandbox\'s machine is to go down for maintenance at `at` (null: no longer); `gone` when the session ended',
    query: z.object({ after: z.string().optional().describe('workshop broadcasts after this message id') }),
    responses: { 200: { media: 'text/event-stream' } },
    errors: SESSION,
  },
  'POST /api/sessions/:id/ports/:node/:port/share': {
    summary: "Share one port's preview with anyone who has the link, or stop sharing",
    auth: 'session',
    params: z.object({ port: z.coerce.number().int().min(1).max(65535) }),
    body: shareBody,
    maxBody: 1024,
    responses: { 200: z.strictObject({ shared: z.boolean(), ...links }) },
    errors: errors(SESSION, BODY, NODE),
  },
});
