// Shell commands that use up kernel counts inside a learner node, for tests that one learner doing so leaves
// another unaffected. Each is bounded: its processes end by themselves (alarm) if a test never ends them.
// x86_64 syscall numbers: inotify_init(2) is 253, close(2) 3. perl is in every node (Debian's perl-base).
import { readdirSync, readFileSync } from 'node:fs';

/**
 * Starts `procs` processes, each with `ulimit -n <files>`, that open inotify instances until the kernel refuses
 * one (EMFILE: the process's open-file limit, or a per-user count), then hold them (all but one, closed to write
 * the result with). Each writes "<count> <error>" to /tmp/<tag>-<i>.count and its pid to /tmp/<tag>-<i>.pid; the command prints every
 * count line once all are written (or after 60 s). `releaseInotify(tag)` ends them.
 */
export function holdInotify(tag: string, { procs = 3, files = 4096, holdSeconds = 300 } = {}): string {
  const perl =
    `alarm ${holdSeconds}; open(my $p, ">", $ARGV[1]); print $p "$$\\n"; close $p; my (@f, $e); while (1) { my $r = syscall(253); if ($r < 0) { $e = "$!"; last } push @f, $r } my $n = @f; syscall(3, pop @f); ` +
    `open(my $o, ">", "$ARGV[0].tmp"); print $o "$n $e\\n"; close $o; rename("$ARGV[0].tmp", $ARGV[0]); sleep ${holdSeconds}`;
  const one = (i: number) => `(ulimit -n ${files} && exec setsid -f perl -e '${perl}' /tmp/${tag}-${i}.count /tmp/${tag}-${i}.pid) >/dev/null 2>&1 &`;
  const all = Array.from({ length: procs }, (_, i) => one(i)).join(' ');
  const countFiles = Array.from({ length: procs }, (_, i) => `/tmp/${tag}-${i}.count`).join(' ');
  return `rm -f /tmp/${tag}-*; ${all} for _ in $(seq 300); do ok=1; for f in ${countFiles}; do [ -s $f ] || ok=; done; [ -n "$ok" ] && break; sleep 0.2; done; cat ${countFiles}`;
}

/** Ends the processes holdInotify(tag) started (by their pids), releasing what they held. */
export const releaseInotify = (tag: string) => `for p in /tmp/${tag}-*.pid; do kill $(cat $p) 2>/dev/null; done; rm -f /tmp/${tag}-*`;

/** Opens `n` inotify instances in one process and closes them: prints "ok <n>", or "failed after <k>: <error>". */
export const openInotify = (n = 16) =>
  `perl -e 'for my $i (1..${n}) { if (syscall(253) < 0) { print "failed after ", $i - 1, ": $!\\n"; exit 1 } } print "ok ${n}\\n"'`;

/**
 * A fork bomb that waits for SIGUSR1 before forking (so that the exec starting it has ended and needs no process
 * of the node any more), then forks children until the kernel refuses one, and holds them. The children end when
 * the parent does (they block reading a pipe only the parent writes to). The parent renames itself `marker`, writes
 * "<children> <error>" to /tmp/<marker>.count and ends after `holdSeconds` at the latest.
 */
export function forkBomb(marker: string, holdSeconds = 300): string {
  const perl =
    `my $go; $SIG{USR1} = sub { $go = 1 }; $0 = "${marker}"; alarm ${holdSeconds}; sleep 1 until $go; pipe(my $r, my $w); my ($n, $e) = (0, ""); ` +
    `while (1) { my $p = fork(); if (!defined $p) { $e = "$!"; last } if (!$p) { $0 = "${marker}-child"; close $w; sysread($r, my $b, 1); exit 0 } $n++ } ` +
    `open(my $o, ">", "/tmp/${marker}.count"); print $o "$n $e\\n"; close $o; sleep ${holdSeconds}`;
  return `setsid -f perl -e '${perl}' </dev/null >/dev/null 2>&1; echo started`;
}

/** Host pids of processes whose command line (as they set it) is exactly `name`: how the host finds what a test started in a node. */
export function hostPidsNamed(name: string): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .flatMap((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0')[0].trim() === name ? [Number(d)] : [];
      } catch {
        return []; // ended meanwhile
      }
    });
}
