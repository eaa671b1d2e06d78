// The API contract served at /api/openapi.json. Extend it; do not break it.
const error = { $ref: '#/components/schemas/Error' };
const json = (schema: object) => ({ content: { 'application/json': { schema } } });
const errors = {
  400: { description: 'Invalid input', ...json(error) },
  401: { description: 'Missing or wrong token', ...json(error) },
  404: { description: 'Unknown session, node, lesson, step or check', ...json(error) },
};
const sessionId = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const auth = [{ bearer: [] }];

export const openapi = {
  openapi: '3.1.0',
  info: { title: 'Berth sandbox server', version: '0.1.0', description: 'Sessions, terminals and checks for Berth learners. Terminal protocol (WebSocket, binary frames): the "Terminal protocol" section of the README.' },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    schemas: {
      Error: { type: 'object', required: ['error'], properties: { error: { type: 'object', required: ['code', 'message', 'requestId'], properties: { code: { type: 'string' }, message: { type: 'string' }, requestId: { type: 'string' } } } } },
      Created: { type: 'object', required: ['id', 'token', 'expiresAt', 'nodes'], properties: { id: { type: 'string' }, token: { type: 'string' }, expiresAt: { type: 'string', format: 'date-time' }, nodes: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' } } } } } },
      Session: { type: 'object', properties: { id: { type: 'string' }, lesson: { type: ['string', 'null'] }, createdAt: { type: 'string' }, expiresAt: { type: 'string' }, idleExpiresAt: { type: ['string', 'null'], description: 'null for a workshop session (no idle limit)' }, nodes: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, state: { type: 'string' } } } } } },
      ExecResult: { type: 'object', properties: { exitCode: { type: 'integer' }, stdout: { type: 'string' }, stderr: { type: 'string' }, durationMs: { type: 'integer' }, truncated: { type: 'boolean' } } },
      Replay: {
        type: 'object', required: ['lesson', 'step', 'state', 'steps', 'startedAt'],
        properties: {
          lesson: { type: 'string' }, step: { type: 'string', description: 'The step whose start the sandbox is brought to' },
          state: { enum: ['running', 'done', 'failed'] }, startedAt: { type: 'string', format: 'date-time' }, ms: { type: 'integer' },
          steps: { type: 'array', description: 'The steps replayed, in order', items: { type: 'object', properties: { id: { type: 'string' }, title: { type: 'string' }, state: { enum: ['pending', 'running', 'done', 'failed'] }, ms: { type: 'integer' } } } },
          failedAt: { type: 'string' }, problem: { type: 'string', description: "The failing command's exit status and last lines of output" },
        },
      },
      CheckResult: { type: 'object', properties: { id: { type: 'string' }, passed: { type: 'boolean' }, message: { type: 'string' }, detail: { type: 'string' } } },
    },
  },
  paths: {
    '/healthz': { get: { summary: 'Liveness', responses: { 200: { description: 'ok' } } } },
    '/metrics': { get: { summary: 'Prometheus metrics', responses: { 200: { description: 'text exposition format' } } } },
    '/api/sessions': {
      post: {
        summary: 'Create a session (a sandbox with one or more learner engines)',
        requestBody: json({ type: 'object', properties: { lesson: { type: 'string' }, nodes: { type: 'integer', minimum: 1 } } }),
        responses: { 201: { description: 'Created', ...json({ $ref: '#/components/schemas/Created' }) }, 400: errors[400], 404: errors[404], 413: { description: 'Body too large', ...json(error) }, 429: { description: 'Rate limited', ...json(error) }, 503: { description: 'Out of capacity or engine unavailable', ...json(error) } },
      },
    },
    '/api/sessions/{id}': {
      parameters: [sessionId],
      get: { security: auth, summary: 'Describe a session', responses: { 200: json({ $ref: '#/components/schemas/Session' }), ...errors } },
      delete: { security: auth, summary: 'Remove a session and its sandbox', responses: { 204: { description: 'Removed' }, ...errors } },
    },
    '/api/sessions/{id}/extend': { parameters: [sessionId], post: { security: auth, summary: 'Extend the lifetime (not for a workshop session: 409 WORKSHOP_SESSION)', responses: { 200: json({ type: 'object', properties: { expiresAt: { type: 'string' }, idleExpiresAt: { type: ['string', 'null'] } } }), 409: { description: 'A workshop session', ...json(error) }, ...errors } } },
    '/api/sessions/{id}/exec': {
      parameters: [sessionId],
      post: {
        security: auth, summary: 'Run a non-interactive command as the learner (bounded output and time)',
        requestBody: json({ type: 'object', required: ['cmd'], properties: { cmd: { type: 'string' }, node: { type: 'string' }, timeoutMs: { type: 'integer', minimum: 100, maximum: 600000 } } }),
        responses: { 200: json({ $ref: '#/components/schemas/ExecResult' }), 408: { description: 'Timed out', ...json(error) }, ...errors },
      },
    },
    '/api/sessions/{id}/checks/{checkId}': {
      parameters: [sessionId, { name: 'checkId', in: 'path', required: true, schema: { type: 'string' } }],
      post: { security: auth, summary: 'Run a lesson check against the sandbox', requestBody: json({ type: 'object', required: ['lesson'], properties: { lesson: { type: 'string' } } }), responses: { 200: json({ $ref: '#/components/schemas/CheckResult' }), ...errors } },
    },
    '/api/sessions/{id}/replay': {
      parameters: [sessionId],
      post: {
        security: auth, summary: 'Skip to a step: replay the reference commands of every earlier step of a lesson in this sandbox (runs in the background; best on a fresh sandbox)',
        requestBody: json({ type: 'object', required: ['lesson', 'step'], properties: { lesson: { type: 'string' }, step: { type: 'string' } } }),
        responses: { 202: { description: 'Started', ...json({ $ref: '#/components/schemas/Replay' }) }, 409: { description: 'REPLAY_RUNNING (one at a time) or NODES_MISSING (the lesson needs more nodes)', ...json(error) }, ...errors },
      },
      get: { security: auth, summary: "The last replay's progress or outcome", responses: { 200: json({ $ref: '#/components/schemas/Replay' }), ...errors } },
    },
    '/api/sessions/{id}/lessons/{lesson}/steps/{step}/reference': {
      parameters: [sessionId, { name: 'lesson', in: 'path', required: true, schema: { type: 'string' } }, { name: 'step', in: 'path', required: true, schema: { type: 'string' } }],
      get: {
        security: auth, summary: "Show me: the step's reference commands (run blocks, or an exercise's solution) for the page to type into the terminal",
        responses: { 200: json({ type: 'object', properties: { lesson: { type: 'string' }, step: { type: 'string' }, commands: { type: 'array', items: { type: 'object', properties: { node: { type: 'string' }, text: { type: 'string' }, interactive: { type: 'boolean' } } } } } }), ...errors },
      },
    },
    '/api/sessions/{id}/nodes': {
      parameters: [sessionId],
      post: { security: auth, summary: 'Add the next node (node2, node3, ...) to the session', responses: { 201: json({ type: 'object', properties: { name: { type: 'string' } } }), 409: { description: 'At the node limit', ...json(error) }, ...errors } },
    },
    '/api/sessions/{id}/nodes/{node}': {
      parameters: [sessionId, { name: 'node', in: 'path', required: true, schema: { type: 'string' } }],
      delete: { security: auth, summary: 'Remove a node (not the last one)', responses: { 204: { description: 'Removed' }, 409: { description: 'Last node', ...json(error) }, ...errors } },
    },
    '/api/sessions/{id}/files': {
      parameters: [sessionId, { name: 'path', in: 'query', schema: { type: 'string' }, description: 'relative to the workspace /home/learner' }, { name: 'node', in: 'query', schema: { type: 'string' } }],
      get: { security: auth, summary: 'List a folder ({type:"dir", path, entries}) or read a file ({type:"file", path, size, encoding: utf8|base64, content})', responses: { 200: json({ type: 'object' }), 413: { description: 'File too large', ...json(error) }, ...errors } },
      put: { security: auth, summary: 'Write a file (parents created)', requestBody: json({ type: 'object', required: ['content'], properties: { content: { type: 'string' }, encoding: { enum: ['utf8', 'base64'] } } }), responses: { 200: json({ type: 'object', properties: { path: { type: 'string' }, size: { type: 'integer' } } }), 409: { description: 'A folder or file is in the way', ...json(error) }, 413: { description: 'File too large', ...json(error) }, ...errors } },
      post: { security: auth, summary: 'Create a folder', requestBody: json({ type: 'object', required: ['type'], properties: { type: { const: 'dir' } } }), responses: { 201: json({ type: 'object', properties: { path: { type: 'string' } } }), ...errors } },
      delete: { security: auth, summary: 'Delete a file, symlink or folder', responses: { 204: { description: 'Deleted' }, ...errors } },
    },
    '/api/sessions/{id}/ports': {
      parameters: [sessionId],
      get: { security: auth, summary: 'Published ports of the session\'s engines, with preview links', responses: { 200: json({ type: 'object', properties: { ports: { type: 'array', items: { type: 'object', properties: { node: { type: 'string' }, port: { type: 'integer' }, container: { type: 'string' }, image: { type: 'string' }, shared: { type: 'boolean' }, url: { type: 'string' }, pathUrl: { type: 'string' } } } } } }), ...errors } },
    },
    '/api/sessions/{id}/ports/{node}/{port}/share': {
      parameters: [sessionId, { name: 'node', in: 'path', required: true, schema: { type: 'string' } }, { name: 'port', in: 'path', required: true, schema: { type: 'integer' } }],
      post: { security: auth, summary: 'Share a port with anyone who has the link, or stop sharing', requestBody: json({ type: 'object', required: ['shared'], properties: { shared: { type: 'boolean' } } }), responses: { 200: json({ type: 'object', properties: { shared: { type: 'boolean' }, url: { type: 'string' }, pathUrl: { type: 'string' } } }), ...errors } },
    },
    '/api/sessions/{id}/events': {
      parameters: [sessionId, { name: 'after', in: 'query', schema: { type: 'integer' }, description: 'workshop broadcasts after this id' }],
      get: { security: auth, summary: 'Server-sent events: hello {ports: push|poll}, ports {ports}, and for a workshop learner workshop, message, watch; gone when the session ended', responses: { 200: { description: 'text/event-stream' }, ...errors } },
    },
    '/api/sessions/{id}/archive': {
      parameters: [sessionId, { name: 'path', in: 'query', schema: { type: 'string' }, description: 'a folder relative to /home/learner (default: the workspace)' }, { name: 'node', in: 'query', schema: { type: 'string' } }],
      get: { security: auth, summary: 'The folder as a tar (streamed; engine data and caches left out)', responses: { 200: { description: 'application/x-tar' }, ...errors } },
    },
    '/api/lessons/{lesson}/quizzes/{quiz}/answer': {
      parameters: [{ name: 'lesson', in: 'path', required: true, schema: { type: 'string' } }, { name: 'quiz', in: 'path', required: true, schema: { type: 'string' } }],
      post: { summary: 'Judge an answer (option numbers); the explanations of the chosen options come back', requestBody: json({ type: 'object', required: ['answer'], properties: { answer: { type: 'array', items: { type: 'integer' } } } }), responses: { 200: json({ type: 'object', properties: { correct: { type: 'boolean' }, multiple: { type: 'boolean' }, rightCount: { type: 'integer' }, chosenRight: { type: 'integer' }, chosenWrong: { type: 'integer' }, explanations: { type: 'array', items: { type: 'object' } } } }), ...errors } },
    },
    '/api/sandbox-facts': {
      get: { summary: 'What this server\'s sandboxes are, for lesson notes that depend on it (no token)', responses: { 200: json({ type: 'object', required: ['engine', 'ipvs'], properties: { engine: { type: 'string', enum: ['rootless', 'rootful'] }, ipvs: { type: 'string', enum: ['yes', 'no'] } } }) } },
    },
    '/api/sessions/{id}/terminal': {
      parameters: [sessionId, { name: 'node', in: 'query', schema: { type: 'string' } }, { name: 'tab', in: 'query', schema: { type: 'string' } }],
      get: { summary: 'WebSocket terminal (subprotocols berth.v1 and bearer.<token>)', responses: { 101: { description: 'Switching protocols' }, 403: { description: 'Foreign Origin' } } },
    },
  },
};
