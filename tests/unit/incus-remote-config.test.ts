// A remote Incus in the configuration (BERTH_INCUS_URL and its PEM files): each problem names its variable,
// and a remote Incus the server cannot reach stops its start, before it starts anything.
import test from 'ava';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../sandbox-server/config.ts';
import { pinnedTls } from '../../sandbox-server/engine/incus/client.ts';
import { startServer } from '../../sandbox-server/main.ts';
import { makeCert, type CertFiles } from '../helpers/certs.ts';

let dir: string;
let client: CertFiles;
let server: CertFiles;
let env: Record<string, string>;

test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'berth-remote-config-'));
  client = makeCert(dir, 'client');
  server = makeCert(dir, 'server', 'serverAuth');
  env = {
    BERTH_INCUS_URL: 'https://incus.example.org:8443',
    BERTH_INCUS_CLIENT_CERT: client.cert,
    BERTH_INCUS_CLIENT_KEY: client.key,
    BERTH_INCUS_SERVER_CERT: server.cert,
  };
});
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test('the three PEM files are read and checked with the URL; no URL, no remote', (t) => {
  t.is(loadConfig({}).incus.remote, null);
  const r = loadConfig(env).incus.remote;
  t.is(r?.url, env.BERTH_INCUS_URL);
  t.is(r?.serverCert, server.pem);
  t.regex(r?.clientKey ?? '', /PRIVATE KEY/);
});

test('config errors name the variable: the URL, a missing or unreadable file, a file of the wrong kind, a file without the URL', (t) => {
  const bad = (over: Record<string, string | undefined>) => t.throws(() => loadConfig({ ...env, ...over }), { instanceOf: ConfigError })!.message;
  t.regex(bad({ BERTH_INCUS_URL: 'http://incus.example.org:8443' }), /BERTH_INCUS_URL: an address such as https:/);
  t.regex(bad({ BERTH_INCUS_URL: 'https://incus.example.org' }), /BERTH_INCUS_URL: /, 'the port is said, as incus remote add prints it');
  t.regex(bad({ BERTH_INCUS_CLIENT_KEY: undefined }), /BERTH_INCUS_CLIENT_KEY: needed with BERTH_INCUS_URL.*\(unset\)/);
  t.regex(bad({ BERTH_INCUS_SERVER_CERT: join(dir, 'nope.crt') }), /BERTH_INCUS_SERVER_CERT: cannot read it: .*ENOENT/);
  const notPem = join(dir, 'not.pem');
  writeFileSync(notPem, 'hello\n');
  const msg = bad({ BERTH_INCUS_CLIENT_CERT: notPem, BERTH_INCUS_CLIENT_KEY: client.cert });
  t.regex(msg, /BERTH_INCUS_CLIENT_CERT: not a PEM certificate/);
  t.regex(msg, /BERTH_INCUS_CLIENT_KEY: not a PEM private key/);
  t.regex(
    t.throws(() => loadConfig({ BERTH_INCUS_SERVER_CERT: server.cert }), { instanceOf: ConfigError })!.message,
    /BERTH_INCUS_SERVER_CERT: only used with BERTH_INCUS_URL/,
  );
});

test('the pin accepts exactly the pinned certificate, whatever name the server was reached by', (t) => {
  const tls = pinnedTls({ url: env.BERTH_INCUS_URL, clientCert: client.pem, clientKey: '', serverCert: server.pem });
  const peer = (fp: string) => ({ fingerprint256: fp }) as Parameters<typeof tls.checkServerIdentity>[1];
  const colons = (hex: string) => hex.toUpperCase().match(/../g)!.join(':');
  t.is(tls.checkServerIdentity('any.name', peer(colons(server.fingerprint))), undefined);
  t.regex(tls.checkServerIdentity('incus.example.org', peer(colons(client.fingerprint)))?.message ?? '', /not the pinned one/);
});

test('a remote Incus that cannot be reached stops the start with the variable named, before any engine is started', async (t) => {
  // Loopback port 1: refused at once, and nothing leaves this machine. Whether a reachable one is refused is
  // engine/incus/cluster.ts's refusal (tests/unit/incus-fleet.test.ts).
  const local = { ...env, BERTH_INCUS_URL: 'https://127.0.0.1:1', BERTH_STATE_DIR: join(dir, 'state') };
  const err = await t.throwsAsync(startServer(local), { instanceOf: ConfigError });
  t.regex(err!.message, /^BERTH_INCUS_URL: https:\/\/127\.0\.0\.1:1 could not be asked about its members: .*ECONNREFUSED/);
  await t.throwsAsync(startServer({ ...local, BERTH_PROVIDER: 'incus' }), { instanceOf: ConfigError });
  t.false(existsSync(join(dir, 'state', 'docker.sock')), 'no engine was started for it');
});
