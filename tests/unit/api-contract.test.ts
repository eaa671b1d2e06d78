// The three copies of the API contract stay in step until they come from one source: every route the app
// serves is in the OpenAPI document with its method and in the README's API table, and the document
// describes no HTTP route the app lacks (the terminals are WebSocket upgrades, served beside Hono).
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildApp } from '../helpers/app-harness.ts';

const UPGRADES = new Set(['GET /api/sessions/{id}/terminal', 'GET /api/workshops/{id}/learners/{learner}/terminal']);

async function contract() {
  const h = buildApp();
  // The document as the server serves it: the core paths and every feature's.
  const openapi = await (await h.request('/api/openapi.json')).json() as { paths: Record<string, Record<string, unknown>> };
  const served = new Set(h.app.routes
    .filter((r) => r.method !== 'ALL' && !r.path.includes('*') && r.path !== '/api/openapi.json')
    .map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, '{$1}')}`));
  h.close();
  const documented = new Set(Object.entries(openapi.paths)
    .flatMap(([path, ops]) => Object.keys(ops).filter((m) => m !== 'parameters').map((m) => `${m.toUpperCase()} ${path}`)));
  return { served, documented };
}

test('every route the app serves is in the OpenAPI document, and the document has nothing the app lacks', async (t) => {
  const { served, documented } = await contract();
  t.true(served.size > 30, `found ${served.size} routes`);
  t.deepEqual([...served].filter((r) => !documented.has(r)), [], 'served but not in sandbox-server/openapi.ts (or workshops/openapi.ts)');
  t.deepEqual([...documented].filter((r) => !served.has(r) && !UPGRADES.has(r)), [], 'in the OpenAPI document but not served');
});

test('every route the app serves has a row in the README API table', async (t) => {
  const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('## HTTP API'), readme.indexOf('### Terminal protocol'));
  const missing = [...(await contract()).served].filter((r) => {
    const [method, path] = r.split(' ');
    const p = path.replace(/\{(\w+)\}/g, ':$1');
    // A row names the method and path, or a path whose methods it lists (`GET` / `PATCH /api/workshops/:id`).
    return !table.split('\n').some((row) => row.includes(p) && (row.includes(method) || row.includes(`\`${method}\``)));
  });
  t.deepEqual(missing, []);
});
