// What lessons rely on inside a learner engine: pulls through the mirror, apt in docker build, published ports.
import test from 'ava';
import { createSession, exec, startServer, type TestServer } from '../helpers/server.ts';

let s: TestServer;
test.before(async () => { s = await startServer(); });
test.after.always(async () => { await s?.stop(); });

test('docker pull nginx through the mirror, an apt build, and a published port all work in a sandbox', async (t) => {
  const c = await createSession(s);
  try {
    const pull = await exec(s, c, 'docker pull nginx', { timeoutMs: 120_000 });
    t.is(pull.exitCode, 0, pull.stderr);
    const build = await exec(s, c, 'printf "FROM debian\\nRUN apt-get update && apt-get install -y --no-install-recommends jq && rm -rf /var/lib/apt/lists/*\\n" | docker build -q -t withjq - && docker run --rm withjq jq --version', { timeoutMs: 300_000 });
    t.is(build.exitCode, 0, build.stderr);
    t.regex(build.stdout, /jq-1\./);
    const web = await exec(s, c, 'docker run -d -p 8080:80 httpd >/dev/null && curl -s --retry 10 --retry-all-errors http://localhost:8080', { timeoutMs: 120_000 });
    t.regex(web.stdout, /It works!/);
  } finally {
    await s.api(`/api/sessions/${c.id}`, { method: 'DELETE', token: c.token });
  }
});
