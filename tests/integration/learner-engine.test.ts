// What lessons rely on inside a learner engine: pulls through the mirror, RUN steps in docker build, published ports.
import test from 'ava';
import { createSession, exec, startServer, type TestServer } from '../helpers/server.ts';

let s: TestServer;
test.before(async () => { s = await startServer(); });
test.after.always(async () => { await s?.stop(); });

test('docker pull nginx through the mirror, a build with RUN steps, and a published port all work in a sandbox', async (t) => {
  const c = await createSession(s);
  try {
    const pull = await exec(s, c, 'docker pull nginx', { timeoutMs: 120_000 });
    t.is(pull.exitCode, 0, pull.stderr);
    // A build whose RUN steps execute in the nested engine, from catalog images only: apt-get would reach
    // Debian's servers, and tests send no traffic beyond this machine (see the issue note on a local apt repo).
    const build = await exec(s, c, 'printf "FROM python\\nRUN python3 -m venv /opt/v && /opt/v/bin/python -c \\"print(6*7)\\" > /answer\\nCMD [\\"cat\\", \\"/answer\\"]\\n" | docker build -q -t answer - && docker run --rm answer', { timeoutMs: 300_000 });
    t.is(build.exitCode, 0, build.stderr);
    t.is(build.stdout.trim().split('\n').at(-1), '42');
    const web = await exec(s, c, 'docker run -d -p 8080:80 httpd >/dev/null && curl -s --retry 10 --retry-all-errors http://localhost:8080', { timeoutMs: 120_000 });
    t.regex(web.stdout, /It works!/);
  } finally {
    await s.api(`/api/sessions/${c.id}`, { method: 'DELETE', token: c.token });
  }
});
