// The workshop parts that need no engine: instructor tokens and tickets, the tables, CSV, config.
import test from 'ava';
import { appendFileSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { hashToken } from '../../sandbox-server/auth.ts';
import { ConfigError, loadWorkshopConfig } from '../../sandbox-server/config.ts';
import { AdminAuth, TOKENS_FILE, addAdminToken } from '../../sandbox-server/workshops/admin-auth.ts';
import { csvField } from '../../sandbox-server/workshops/csv.ts';
import { WorkshopDb, migrateWorkshops, type Learner, type Workshop } from '../../sandbox-server/workshops/db.ts';
import { nameKey, normalizeCode } from '../../sandbox-server/workshops/service.ts';

const dir = () => mkdtempSync(join(tmpdir(), 'berth-ws-unit-'));

test('first run: one token is made, only its hash is written, and it works', (t) => {
  const d = dir();
  const auth = new AdminAuth({ stateDir: d, envHashes: [] });
  const token = auth.ensureOne();
  t.regex(token!, /^berth_admin_[A-Za-z0-9_-]{43}$/);
  const file = readFileSync(join(d, TOKENS_FILE), 'utf8');
  t.false(file.includes(token!));
  t.true(file.includes(hashToken(token!)));
  t.is(statSync(join(d, TOKENS_FILE)).mode & 0o777, 0o600);
  t.true(auth.check(token!));
  t.false(auth.check(token!.slice(0, -1) + (token!.endsWith('A') ? 'B' : 'A')));
  t.false(auth.check(undefined));
  // A second start finds it and makes none.
  t.is(new AdminAuth({ stateDir: d, envHashes: [] }).ensureOne(), null);
});

test('tokens from the environment count, and none is made then; the file is re-read when it changes', (t) => {
  const d = dir();
  const auth = new AdminAuth({ stateDir: d, envHashes: [hashToken('from-env-token-abcdefghijklmnop')] });
  t.is(auth.ensureOne(), null);
  t.true(auth.check('from-env-token-abcdefghijklmnop'));
  const added = addAdminToken(d, 'second instructor');
  t.true(auth.check(added), 'a token added while running works at once');
  t.regex(readFileSync(join(d, TOKENS_FILE), 'utf8'), /second-instructor/);
  // Revoking: the line goes, the token stops working.
  writeFileSync(
    join(d, TOKENS_FILE),
    readFileSync(join(d, TOKENS_FILE), 'utf8')
      .split('\n')
      .filter((l) => !l.includes(hashToken(added)))
      .join('\n'),
  );
  appendFileSync(join(d, TOKENS_FILE), '# changed\n');
  t.false(auth.check(added));
});

test('tickets: single use, one workshop, one minute', (t) => {
  let now = 1_000_000;
  const auth = new AdminAuth({ stateDir: dir(), envHashes: [], now: () => now });
  const a = auth.issueTicket('w1');
  t.false(auth.useTicket(a.ticket, 'w2'), 'another workshop');
  t.false(auth.useTicket(a.ticket, 'w1'), 'spent by the wrong try');
  const b = auth.issueTicket('w1');
  t.true(auth.useTicket(b.ticket, 'w1'));
  t.false(auth.useTicket(b.ticket, 'w1'), 'used once only');
  const c = auth.issueTicket('w1');
  now += 60_001;
  t.false(auth.useTicket(c.ticket, 'w1'), 'expired');
  t.false(auth.useTicket(null, 'w1'));
});

test('config: admin hashes are validated and name the variable', (t) => {
  t.deepEqual(loadWorkshopConfig({}).adminHashes, []);
  const h = hashToken('x');
  t.deepEqual(loadWorkshopConfig({ BERTH_ADMIN_TOKEN_SHA256: ` ${h.toUpperCase()} ,` }).adminHashes, [h]);
  const err = t.throws(() => loadWorkshopConfig({ BERTH_ADMIN_TOKEN_SHA256: 'secret-in-clear' }), { instanceOf: ConfigError });
  t.regex(err!.message, /BERTH_ADMIN_TOKEN_SHA256/);
});

test('codes and names: typed loosely, compared strictly', (t) => {
  t.is(normalizeCode(' abc-def '), 'ABCDEF');
  t.is(nameKey('Ada  LOVELACE'), nameKey('ada lovelace'));
  t.is(nameKey('Ｆｕｌｌ'), nameKey('full'), 'full-width letters are the same name');
});

test('CSV: quoted, and a name cannot become a formula', (t) => {
  t.is(csvField('Ada "the first"'), '"Ada ""the first"""');
  t.is(csvField('=HYPERLINK("x")'), '"\'=HYPERLINK(""x"")"');
  t.is(csvField('-2+3'), '"\'-2+3"');
  t.is(csvField(null), '""');
  t.is(csvField(3), '"3"');
});

test('tables: migration is idempotent; a passed check stays passed; verified only by the server', (t) => {
  const db = new DatabaseSync(':memory:');
  migrateWorkshops(db);
  migrateWorkshops(db);
  const wdb = new WorkshopDb(db);
  const w: Workshop = {
    id: 'w1',
    code: 'ABCDEF',
    title: 'T',
    lessons: ['01-x'],
    startsAt: 0,
    endsAt: 10,
    capacity: 2,
    expected: 2,
    limits: { memoryBytes: 1, nanoCpus: 1, pids: 64 },
    nodesPerLearner: 1,
    stuckMinutes: 10,
    createdAt: 0,
    prewarmAt: null,
    endedAt: null,
    endReason: null,
  };
  wdb.insertWorkshop(w);
  t.deepEqual(wdb.byCode('ABCDEF'), w);
  const l: Learner = {
    id: 'l1',
    workshopId: 'w1',
    name: 'Ada',
    nameKey: 'ada',
    keyHash: 'k',
    sessionId: 's1',
    joinedAt: 1,
    lesson: null,
    step: null,
    lastProgressAt: null,
    lastActivityAt: 1,
    keepaliveAt: null,
    sandbox: 'ready',
    seeded: [],
  };
  wdb.insertLearner(l);
  t.throws(() => wdb.insertLearner({ ...l, id: 'l2' }), { message: /UNIQUE/ }, 'one name per workshop');
  t.false(wdb.recordCheck('l1', '01-x', 'c1', false, true, 2));
  t.true(wdb.recordCheck('l1', '01-x', 'c1', true, false, 3), 'reported pass');
  t.true(wdb.recordCheck('l1', '01-x', 'c1', true, true, 4), 'now verified');
  t.false(wdb.recordCheck('l1', '01-x', 'c1', false, true, 5), 'a later failure changes nothing');
  t.deepEqual(
    wdb.checks('l1').map((c) => [c.passed, c.verified, c.attempts, c.firstPassedAt]),
    [[true, true, 4, 3]],
  );
  t.true(wdb.recordQuiz('l1', '01-x', 'q', 'a', true, 6));
  t.false(wdb.recordQuiz('l1', '01-x', 'q', 'a', true, 7));
  t.deepEqual(wdb.counts('w1').get('l1'), { passed: 1, verified: 1, quiz: 1 });
  t.is(wdb.seated('w1'), 1);
  t.true(wdb.markEnded('w1', 9, 'instructor'));
  t.false(wdb.markEnded('w1', 9, 'time'), 'ends once');
  t.is(wdb.workshop('w1')!.endReason, 'instructor');
  t.deepEqual(wdb.open(), []);
  t.deepEqual(wdb.addMessage('w1', 'hi', 8), { id: 1, text: 'hi', at: 8 });
  t.deepEqual(wdb.messages('w1', 1), []);
});
