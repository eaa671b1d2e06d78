// Splits a block of shell into the commands a learner would type one by one, and wraps it so that the
// verifier learns about every failing command, not only the last one. A command whose line ends in a
// `# fails` comment is expected to fail: the verifier then demands a non-zero exit.
import { spawnSync } from 'node:child_process';
import { FAILS_MARKER } from './schema.ts';

export type BlockCommand = { text: string; line: number; expectFail: boolean };

/** Whether bash sees `text` as complete commands (no open quote, loop, heredoc or continuation). */
function complete(text: string): boolean {
  if (/\\$/.test(text)) return false;
  // Most lines are plain commands: no quotes, brackets, heredocs or compound keywords, no trailing | or &&.
  const plain =
    !text.includes('\n') &&
    /^[^'"`\\(){}<\[\]]*$/.test(text) &&
    !/^\s*(if|for|while|until|case|select|function)\b/.test(text) &&
    !/(\||&&|do|then)\s*$/.test(text);
  if (plain) return true;
  const r = spawnSync('bash', ['-n'], { input: text, encoding: 'utf8' });
  return r.status === 0 && !r.stderr.trim();
}

/** The block's top-level commands, each with its first line (1-based, within the block). */
export function splitCommands(script: string): BlockCommand[] {
  const lines = script.replace(/\n$/, '').split('\n');
  const out: BlockCommand[] = [];
  let start = 0;
  for (let i = 0; i < lines.length; i++) {
    const text = lines.slice(start, i + 1).join('\n');
    if (!text.trim() || (/^\s*#/.test(text) && start === i)) {
      start = i + 1;
      continue;
    }
    if (i < lines.length - 1 && !complete(text)) continue;
    out.push({ text, line: start + 1, expectFail: FAILS_MARKER.test(lines[i]) });
    start = i + 1;
  }
  return out;
}

const PREFIX = 'berth-verify:';

/**
 * The block as one bash script that stops at the first command that fails (or that succeeds although
 * marked `# fails`), saying which on stderr. Commands still share one shell, as in a terminal.
 */
export function strictScript(script: string): string {
  const cmds = splitCommands(script);
  const body = cmds.map(
    (c, i) =>
      `${c.text}\n__berth_rc=$?; ${
        c.expectFail
          ? `[ $__berth_rc -ne 0 ] || { echo "${PREFIX} command ${i} was marked '# fails' but exited 0" >&2; exit 97; }`
          : `[ $__berth_rc -eq 0 ] || { echo "${PREFIX} command ${i} exited $__berth_rc" >&2; exit $__berth_rc; }`
      }`,
  );
  return body.join('\n') + '\n';
}

/** Turns the wrapper's last words back into the command's text, for a readable report. */
export function explainFailure(script: string, stderr: string): string | undefined {
  const m = new RegExp(`${PREFIX} command (\\d+) (.*)$`, 'm').exec(stderr);
  if (!m) return undefined;
  const c = splitCommands(script)[Number(m[1])];
  return c ? `line ${c.line} \`${c.text.split('\n')[0].slice(0, 100)}\` ${m[2]}` : undefined;
}
