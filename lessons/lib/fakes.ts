// Fakes: shortcuts a learner in a hurry might take instead of a step, each of which must FAIL the check
// it is filed under. `lessons/<id>/fakes/<check-id>.sh` holds one or more, each opened by a
// `# fake: what the shortcut is` line (or `# fake node=node2: …`, `# fake engine=rootful: …` for a shortcut only
// a rootful engine allows, such as `--pid host`), optionally closed by an `# undo:` section that puts back what
// the fake changed in objects that existed before it. Pure: no I/O.
import type { LessonError } from './schema.ts';

export type Fake = { title: string; node: string; script: string; undo: string; line: number; engine?: 'rootful' };

const OPEN = /^#\s*fake((?:\s+[a-z]+=[^\s:]+)*)\s*:\s*(.*)$/;
const UNDO = /^#\s*undo\s*:?\s*$/;

/** Checks whose evidence is a name, a tag, a label, log text or an HTTP body are easy to imitate. */
export function needsThreeFakes(script: string): boolean {
  return /docker logs|\bcurl\b|\bwget\b|label|tags|\.Names|exec \S+ hostname|Config\.Hostname|image inspect|docker images/i.test(script);
}

export function parseFakes(text: string, file: string): { fakes: Fake[]; errors: LessonError[] } {
  const fakes: Fake[] = [];
  const errors: LessonError[] = [];
  type Open = { f: Fake; body: string[]; undo: string[] | null };
  let cur = null as Open | null;
  const close = () => {
    if (!cur) return;
    cur.f.script = cur.body.join('\n').trim() + '\n';
    cur.f.undo = cur.undo ? cur.undo.join('\n').trim() : '';
    if (!cur.body.some((l) => l.trim() && !l.trim().startsWith('#'))) errors.push({ file, line: cur.f.line, message: `fake "${cur.f.title}" has no commands` });
    if (cur.undo && !cur.undo.some((l) => l.trim() && !l.trim().startsWith('#')))
      errors.push({ file, line: cur.f.line, message: `fake "${cur.f.title}" has an empty # undo: section` });
    fakes.push(cur.f);
    cur = null;
  };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    const line = i + 1;
    const open = OPEN.exec(l);
    if (open) {
      close();
      const opts = new Map(
        open[1]
          .trim()
          .split(/\s+/)
          .filter(Boolean)
          .map((kv) => kv.split('=') as [string, string]),
      );
      for (const key of opts.keys())
        if (key !== 'node' && key !== 'engine') errors.push({ file, line, message: `a fake takes node= and engine=, not ${key}=` });
      const node = opts.get('node') ?? 'node1';
      if (!/^node[1-5]$/.test(node)) errors.push({ file, line, message: `fake node must be node1 … node5, not ${node}` });
      const engine = opts.get('engine');
      if (engine !== undefined && engine !== 'rootful') errors.push({ file, line, message: `fake engine= can only be rootful, not ${engine}` });
      if (open[2].trim().length < 3) errors.push({ file, line, message: 'a fake needs a title: # fake: what the shortcut is' });
      cur = { f: { title: open[2].trim(), node, script: '', undo: '', line, ...(engine === 'rootful' ? { engine } : {}) }, body: [], undo: null };
      continue;
    }
    if (UNDO.test(l)) {
      if (!cur) errors.push({ file, line, message: '# undo: outside a fake' });
      else if (cur.undo) errors.push({ file, line, message: `fake "${cur.f.title}" has two # undo: sections` });
      else cur.undo = [];
      continue;
    }
    if (!cur) {
      if (l.trim() && !l.trim().startsWith('#')) errors.push({ file, line, message: 'commands before the first # fake: line' });
      continue;
    }
    (cur.undo ?? cur.body).push(l);
  }
  close();
  if (!fakes.length) errors.push({ file, line: 1, message: 'no fakes in this file (each starts with # fake: …)' });
  return { fakes, errors };
}
