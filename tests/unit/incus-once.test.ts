// The Incus exec guard (engine/incus/exec.ts ONCE) is plain bash: here it runs on this machine, in a folder of
// its own instead of the node's /run/berth-exec and a pid namespace of its own, with commands that stand for
// what learners run.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ONCE } from '../../sandbox-server/engine/incus/exec.ts';

function guard() {
  const dir = mkdtempSync(join(tmpdir(), 'berth-once-'));
  const script = ONCE.replaceAll('/run/berth-exec', join(dir, 'runs'));
  return {
    dir,
    run: (id: string, cmd: string) => {
      const t0 = performance.now();
      // In a pid namespace with its own /proc, as in a node: the watchdog scans every process's descriptors, and
      // this host's hundreds of processes (engines, daemons, other suites) made a one-line command take 35 s.
      const r = spawnSync(
        'unshare',
        ['--user', '--map-root-user', '--pid', '--fork', '--mount-proc', 'bash', '-c', script, 'berth-once', id, '65536', 'bash', '-c', cmd],
        { encoding: 'utf8', timeout: 180_000 },
      );
      return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - t0 };
    },
  };
}

test('the guard passes output, errors and the status through', (t) => {
  const r = guard().run('a', 'echo hi; echo oops >&2; exit 3');
  t.deepEqual([r.status, r.stdout, r.stderr], [3, 'hi\n', 'oops\n']);
});

test('a second run with the same id replays the first instead of running again', (t) => {
  const g = guard();
  const cmd = `echo ran >> ${g.dir}/count; echo out`;
  t.is(g.run('same', cmd).stdout, 'out\n');
  t.is(g.run('same', cmd).stdout, 'out\n');
  t.is(readFileSync(join(g.dir, 'count'), 'utf8'), 'ran\n');
});

test('a process left holding the output is cut off, as docker exec ends with its command', (t) => {
  const r = guard().run('bg', 'sleep 120 & echo hi');
  t.is(r.stdout, 'hi\n');
  // Far below the 120 s the background job would hold the stream: the guard did not wait for it. (Well under a
  // second on a quiet machine; 18 s was seen at a load average of 45, so the bound leaves room for that.)
  t.true(r.ms < 60_000, `took ${r.ms} ms`);
});

test('a large output is capped, and the command is not cut short by a full pipe', (t) => {
  const r = guard().run('big', 'head -c 8000000 /dev/zero | tr "\\0" x; head -c 3000000 /dev/zero | tr "\\0" y >&2; echo done > /dev/null');
  t.is(r.status, 0);
  t.is(r.stdout.length, 65536);
  t.is(r.stderr.length, 65536);
});

test('readers slow to copy the last output (a loaded machine) are waited for, not cut off', (t) => {
  const g = guard();
  // The command stops the guard's readers, writes its output into the fifos (it fits in the pipe), and leaves a
  // job, holding none of the streams, that lets the readers go on 1.5 s later: three times the watchdog's wait.
  const readers = `s=; for p in $(pgrep -x cat); do case $(readlink /proc/$p/fd/0) in ${g.dir}/runs/*/o|${g.dir}/runs/*/e) s="$s $p";; esac; done`;
  const r = g.run('slow', `${readers}; kill -STOP $s; (sleep 1.5; kill -CONT $s) < /dev/null > /dev/null 2>&1 & echo kept; echo also >&2`);
  t.deepEqual([r.status, r.stdout, r.stderr], [0, 'kept\n', 'also\n']);
});
