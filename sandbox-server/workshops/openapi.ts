// The workshop routes' part of the server's OpenAPI document (app.ts joins each feature's paths to openapi.ts's).

const error = { $ref: '#/components/schemas/Error' };
const json = (schema: object) => ({ content: { 'application/json': { schema } } });
const obj = { type: 'object' };
const admin = [{ bearer: [] }];
const id = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const learner = { name: 'learner', in: 'path', required: true, schema: { type: 'string' } };
const errs = {
  400: { description: 'Invalid input', ...json(error) },
  401: { description: 'Missing or wrong admin token', ...json(error) },
  404: { description: 'Unknown workshop or learner (WORKSHOP_NOT_FOUND, LEARNER_NOT_FOUND)', ...json(error) },
};
const ok = (description: string, schema: object = obj) => ({ description, ...json(schema) });

export const workshopPaths = {
  '/api/workshops': {
    post: {
      security: admin, summary: 'Create a workshop (instructor)',
      requestBody: json({
        type: 'object', required: ['title', 'lessons', 'endsAt', 'capacity'],
        properties: {
          title: { type: 'string' }, lessons: { type: 'array', items: { type: 'string' } },
          startsAt: { type: 'string', format: 'date-time' }, endsAt: { type: 'string', format: 'date-time' },
          capacity: { type: 'integer' }, expectedLearners: { type: 'integer' }, nodesPerLearner: { type: 'integer' },
          stuckMinutes: { type: 'number' },
          limits: { type: 'object', properties: { memory: { type: 'string', example: '512m' }, cpus: { type: 'number' }, pids: { type: 'integer' } } },
        },
      }),
      responses: { 201: ok('The workshop, with its join code and link'), ...errs },
    },
    get: { security: admin, summary: 'List workshops', responses: { 200: ok('workshops'), 401: errs[401] } },
  },
  '/api/workshops/{id}': {
    parameters: [id],
    get: { security: admin, summary: 'A workshop with its learner rows and messages', responses: { 200: ok('workshop'), ...errs } },
    patch: { security: admin, summary: 'Change title, startsAt (e.g. now, to start at once), endsAt, capacity, expectedLearners or stuckMinutes', responses: { 200: ok('workshop'), ...errs, 409: ok('WORKSHOP_ENDED', error) } },
  },
  '/api/workshops/{id}/end': { parameters: [id], post: { security: admin, summary: 'End now: every learner sandbox is removed, results stay', responses: { 200: ok('workshop'), ...errs } } },
  '/api/workshops/{id}/capacity': { parameters: [id], get: { security: admin, summary: 'How many learner sandboxes of this shape the host can hold, measured (?refresh=1 measures again)', responses: { 200: ok('capacity'), ...errs } } },
  '/api/workshops/{id}/prewarm': { parameters: [id], post: { security: admin, summary: 'Grow the warm pool toward the expected head count now', responses: { 200: ok('pool'), ...errs } } },
  '/api/workshops/{id}/tickets': { parameters: [id], post: { security: admin, summary: 'A one-minute, single-use ticket for EventSource, a download link or the instructor terminal (?ticket=)', responses: { 201: ok('ticket'), ...errs } } },
  '/api/workshops/{id}/events': { parameters: [id], get: { security: admin, summary: 'Server-sent events: snapshot, then learner, workshop and message events (admin header or ?ticket=)', responses: { 200: { description: 'text/event-stream' }, ...errs } } },
  '/api/workshops/{id}/messages': {
    parameters: [id],
    post: { security: admin, summary: 'Broadcast a message to every learner (they poll GET /api/sessions/{id}/workshop)', requestBody: json({ type: 'object', properties: { text: { type: 'string' } } }), responses: { 201: ok('message'), ...errs } },
    get: { security: admin, summary: 'Messages sent so far (?after=<id>)', responses: { 200: ok('messages'), ...errs } },
  },
  '/api/workshops/{id}/results.csv': { parameters: [id], get: { security: admin, summary: 'Results, one CSV row per learner (admin header or ?ticket=)', responses: { 200: { description: 'text/csv' }, ...errs } } },
  '/api/workshops/{id}/learners/{learner}': { parameters: [id, learner], get: { security: admin, summary: 'One learner: row, checks and quiz answers', responses: { 200: ok('learner'), ...errs } } },
  '/api/workshops/{id}/learners/{learner}/tabs': { parameters: [id, learner], get: { security: admin, summary: 'The learner\'s nodes with their open terminal tabs (for the instructor terminal)', responses: { 200: ok('nodes and tabs'), ...errs } } },
  '/api/workshops/{id}/learners/{learner}/reset': { parameters: [id, learner], post: { security: admin, summary: 'Rebuild the learner\'s sandbox (same session and token)', responses: { 200: ok('done'), ...errs, 409: ok('NO_SANDBOX, WORKSHOP_ENDED or CONFLICT', error) } } },
  '/api/workshops/{id}/learners/{learner}/replay': {
    parameters: [id, learner],
    post: { security: admin, summary: 'Skip the learner to a step: rebuild their sandbox (unless fresh is false), then replay the earlier steps as POST /api/sessions/{id}/replay does; body {lesson, step, fresh?}', responses: { 202: ok('replay started (Replay)'), ...errs, 409: ok('NO_SANDBOX, REPLAY_RUNNING, NODES_MISSING or WORKSHOP_ENDED', error) } },
    get: { security: admin, summary: "The learner's last replay (Replay)", responses: { 200: ok('replay'), ...errs } },
  },
  '/api/workshops/{id}/learners/{learner}/terminal': { parameters: [id, learner], get: { security: admin, summary: 'WebSocket (berth.v1): the learner\'s terminal tab, read-only unless takeover=1; as=<name> is shown to the learner in the watching banner; credential bearer.<admin token> subprotocol or ?ticket=', responses: { 101: { description: 'Switching protocols' } } } },
  '/api/join/{code}': { parameters: [{ name: 'code', in: 'path', required: true, schema: { type: 'string' } }], get: { summary: 'What a join code leads to (title, times, seats left)', responses: { 200: ok('workshop'), 404: ok('JOIN_CODE_INVALID', error), 429: ok('RATE_LIMITED', error) } } },
  '/api/join': {
    post: {
      summary: 'Join a workshop with its code and a display name (no account); returns a session',
      requestBody: json({ type: 'object', required: ['code', 'name'], properties: { code: { type: 'string' }, name: { type: 'string' }, key: { type: 'string', description: 'the key from an earlier join, to come back after the sandbox went away' } } }),
      responses: {
        201: ok('{learner:{id,name,key}, workshop, session:{id,token,expiresAt,nodes}}'),
        400: errs[400], 404: ok('JOIN_CODE_INVALID', error), 409: ok('WORKSHOP_FULL, NAME_TAKEN or WORKSHOP_NOT_OPEN', error),
        410: ok('WORKSHOP_ENDED', error), 429: ok('RATE_LIMITED', error), 503: ok('OUT_OF_CAPACITY', error),
      },
    },
  },
  '/api/sessions/{id}/workshop': { parameters: [id], get: { security: [{ bearer: [] }], summary: 'The learner\'s workshop and broadcasts after ?after=<message id> (poll it)', responses: { 200: ok('workshop'), 404: ok('NOT_IN_WORKSHOP', error) } } },
  '/api/sessions/{id}/workshop/reset': { parameters: [id], post: { security: [{ bearer: [] }], summary: 'A workshop learner rebuilds their own sandbox: same session and token, results kept', responses: { 200: ok('{sandbox, ms}'), 404: ok('NOT_IN_WORKSHOP', error), 409: ok('CONFLICT or WORKSHOP_ENDED', error) } } },
  '/api/sessions/{id}/progress': {
    parameters: [id],
    post: {
      security: [{ bearer: [] }], summary: 'Report progress: lesson, step, checks passed, quiz answers; answers with new broadcasts',
      requestBody: json({ type: 'object', required: ['lesson'], properties: { lesson: { type: 'string' }, step: { type: 'string' }, checksPassed: { type: 'array', items: { type: 'string' } }, quiz: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, answer: {}, correct: { type: 'boolean' } } } }, after: { type: 'integer' } } }),
      responses: { 200: ok('{recorded, messages}'), 400: errs[400] },
    },
  },
};
