// The API contract served at /api/openapi.json. Extend it; do not break it.
const error = { $ref: '#/components/schemas/Error' };
const json = (schema: object) => ({ content: { 'application/json': { schema } } });
const errors = {
  400: { description: 'Invalid input', ...json(error) },
  401: { description: 'Missing or wrong token', ...json(error) },
  404: { description: 'Unknown session, node, lesson or check', ...json(error) },
};
const sessionId = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const auth = [{ bearer: [] }];

export const openapi = {
  openapi: '3.1.0',
  info: { title: 'Berth sandbox server', version: '0.1.0', description: 'Sessions, terminals and checks for Berth learners. Terminal protocol: docs/terminal-protocol.md.' },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    schemas: {
      Error: { type: 'object', required: ['error'], properties: { error: { type: 'object', required: ['code', 'message', 'requestId'], properties: { code: { type: 'string' }, message: { type: 'string' }, requestId: { type: 'string' } } } } },
      Created: { type: 'object', required: ['id', 'token', 'expiresAt', 'nodes'], properties: { id: { type: 'string' }, token: { type: 'string' }, expiresAt: { type: 'string', format: 'date-time' }, nodes: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' } } } } } },
      Session: { type: 'object', properties: { id: { type: 'string' }, lesson: { type: ['string', 'null'] }, createdAt: { type: 'string' }, expiresAt: { type: 'string' }, idleExpiresAt: { type: 'string' }, nodes: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, state: { type: 'string' } } } } } },
      ExecResult: { type: 'object', properties: { exitCode: { type: 'integer' }, stdout: { type: 'string' }, stderr: { type: 'string' }, durationMs: { type: 'integer' }, truncated: { type: 'boolean' } } },
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
    '/api/sessions/{id}/extend': { parameters: [sessionId], post: { security: auth, summary: 'Extend the lifetime', responses: { 200: json({ type: 'object', properties: { expiresAt: { type: 'string' } } }), ...errors } } },
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
    '/api/sessions/{id}/terminal': {
      parameters: [sessionId, { name: 'node', in: 'query', schema: { type: 'string' } }, { name: 'tab', in: 'query', schema: { type: 'string' } }],
      get: { summary: 'WebSocket terminal (subprotocols berth.v1 and bearer.<token>)', responses: { 101: { description: 'Switching protocols' }, 403: { description: 'Foreign Origin' } } },
    },
  },
};
