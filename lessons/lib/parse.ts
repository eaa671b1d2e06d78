// Parses one lesson.md into plain data and HTML: markdown-it with a core rule over heading and fence
// tokens (the constructs), zod for front matter and construct bodies. Pure: no I/O.
import MarkdownIt from 'markdown-it';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import {
  checkBlock,
  CONSTRUCTS,
  FAILS_MARKER,
  frontMatter,
  quizBlock,
  SANDBOX_FACTS,
  type SandboxFacts,
  type Check,
  type Command,
  type Lesson,
  type LessonError,
  type Quiz,
  type Step,
} from './schema.ts';

type Construct =
  | { kind: 'run'; node: string; interactive: boolean; text: string }
  | { kind: 'verify'; node: string; script: string }
  | { kind: 'check'; check: Check }
  | { kind: 'quiz'; quiz: Quiz }
  | { kind: 'hint'; markdown: string }
  | { kind: 'sandbox'; when: Partial<SandboxFacts>; markdown: string }
  | { kind: 'invalid' };

type Env = { file: string; offset: number; errors: LessonError[] };
type Token = ReturnType<InstanceType<typeof MarkdownIt>['parse']>[number];

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** Info strings a little off a construct's name are almost always typos, not code languages. */
function nearMiss(name: string): string | undefined {
  const dist = (a: string, b: string) => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0][j] = j;
    for (let i = 1; i <= a.length; i++)
      for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    return d[a.length][b.length];
  };
  return CONSTRUCTS.find((c) => name !== c && dist(name, c) <= (c.length > 4 ? 2 : 1));
}

function zodMessage(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join('.') || 'block'}: ${i.message}`).join('; ');
}

function yamlBody(text: string, line: number, env: Env, what: string): unknown {
  try {
    return parseYaml(text);
  } catch (e) {
    const at = e instanceof YAMLParseError && e.linePos ? e.linePos[0].line : 0;
    env.errors.push({ file: env.file, line: line + at, message: `${what}: invalid YAML: ${(e as Error).message.split('\n')[0]}` });
    return undefined;
  }
}

function readConstruct(t: Token, env: Env): Construct | null {
  const [name = '', ...attrs] = t.info.trim().split(/\s+/);
  const line = env.offset + (t.map?.[0] ?? 0) + 1;
  const err = (message: string): Construct => {
    env.errors.push({ file: env.file, line, message });
    return { kind: 'invalid' };
  };
  if (!(CONSTRUCTS as readonly string[]).includes(name)) {
    const typo = nearMiss(name);
    if (typo) return err(`unknown construct \`${name}\`: did you mean \`${typo}\`?`);
    if (attrs.some((a) => a.includes('='))) return err(`unknown construct \`${name}\` with attributes ${attrs.join(' ')}`);
    return null; // an ordinary code block
  }
  const opts: Record<string, string | true> = {};
  for (const a of attrs) {
    const [k, v] = a.split('=');
    opts[k] = v ?? true;
  }
  const allowed: Record<string, string[]> = {
    run: ['node', 'interactive'],
    verify: ['node'],
    check: [],
    quiz: [],
    hint: [],
    sandbox: Object.keys(SANDBOX_FACTS),
  };
  const unknown = Object.keys(opts).filter((k) => !allowed[name].includes(k));
  if (unknown.length) return err(`\`${name}\` does not take ${unknown.join(', ')} (it takes: ${allowed[name].join(', ') || 'nothing'})`);
  const node = typeof opts.node === 'string' ? opts.node : 'node1';
  if (!/^node[1-5]$/.test(node)) return err(`node must be node1 … node5, not ${String(opts.node)}`);
  const body = t.content;
  if (name === 'run' || name === 'verify') lintFailsMarkers(body, line, env);
  switch (name) {
    case 'run':
      if (!body.trim()) return err('a run block needs a command');
      return { kind: 'run', node, interactive: opts.interactive === true, text: body.replace(/\n$/, '') };
    case 'verify':
      return { kind: 'verify', node, script: body };
    case 'hint':
      return { kind: 'hint', markdown: body };
    case 'sandbox': {
      const when: Record<string, string> = {};
      for (const [k, v] of Object.entries(opts)) {
        const values = SANDBOX_FACTS[k as keyof typeof SANDBOX_FACTS] as readonly string[];
        if (typeof v !== 'string' || !values.includes(v)) return err(`sandbox: ${k} must be ${values.join(' or ')}, not ${v === true ? 'empty' : v}`);
        when[k] = v;
      }
      if (!Object.keys(when).length)
        return err(
          `a sandbox note names the sandboxes it is about (${Object.keys(SANDBOX_FACTS)
            .map((k) => `${k}=…`)
            .join(', ')})`,
        );
      if (!body.trim()) return err('a sandbox note needs text');
      return { kind: 'sandbox', when: when as Partial<SandboxFacts>, markdown: body };
    }
    case 'check': {
      const raw = yamlBody(body, line, env, 'check');
      if (raw === undefined) return { kind: 'invalid' };
      const r = checkBlock.safeParse(raw);
      return r.success ? { kind: 'check', check: { ...r.data, line } } : err(`check: ${zodMessage(r.error)}`);
    }
    default: {
      const raw = yamlBody(body, line, env, 'quiz');
      if (raw === undefined) return { kind: 'invalid' };
      const r = quizBlock.safeParse(raw);
      if (!r.success) return err(`quiz: ${zodMessage(r.error)}`);
      const correct = r.data.options.filter((o) => o.correct).length;
      if (correct === 0) return err(`quiz ${r.data.id}: no option is marked correct`);
      if (!r.data.multiple && correct > 1) return err(`quiz ${r.data.id}: ${correct} options are correct but multiple is false`);
      return { kind: 'quiz', quiz: { ...r.data, line } };
    }
  }
}

/** A `# fails` command must be able to fail: `|| …` or `; true` after it would hide its exit status. */
function lintFailsMarkers(body: string, fenceLine: number, env: Env) {
  body.split('\n').forEach((l, i) => {
    if (!FAILS_MARKER.test(l)) return;
    const cmd = l.replace(FAILS_MARKER, '');
    const at = { file: env.file, line: fenceLine + 1 + i };
    if (!cmd.trim()) env.errors.push({ ...at, message: '`# fails` must end the line of the command that is expected to fail' });
    else if (/\|\||;\s*(true|:)\s*$|&\s*$/.test(cmd))
      env.errors.push({ ...at, message: 'a command marked `# fails` must not hide its exit status (|| …, ; true, &)' });
  });
}

function createMarkdown() {
  const md = new MarkdownIt({ html: false, linkify: true, typographer: false });
  // The construct plugin: reads fences once, after block parsing, and keeps the result on the token.
  md.core.ruler.after('block', 'berth-constructs', (state) => {
    const env = state.env as Env;
    for (const t of state.tokens) if (t.type === 'fence') t.meta = readConstruct(t, env);
    return true;
  });
  const fence = md.renderer.rules.fence!;
  md.renderer.rules.fence = (tokens, idx, options, env, self) => {
    const c = tokens[idx].meta as Construct | null;
    if (!c) return fence(tokens, idx, options, env, self);
    switch (c.kind) {
      case 'run':
        return `<div class="berth-cmd" data-node="${c.node}" data-interactive="${c.interactive}"><pre><code>${esc(c.text)}</code></pre></div>\n`;
      case 'check':
        return `<div class="berth-check" data-check-id="${esc(c.check.id)}" data-node="${c.check.node}"><span class="berth-check-title">${esc(c.check.title)}</span></div>\n`;
      case 'quiz': {
        const q = c.quiz;
        const type = q.multiple ? 'checkbox' : 'radio';
        const opts = q.options.map((o, i) => `<label><input type="${type}" name="quiz-${esc(q.id)}" value="${i}"> ${esc(o.text)}</label>`).join('\n');
        const explain = q.options
          .map((o, i) => `<div class="berth-quiz-explain" data-option="${i}" data-correct="${o.correct}" hidden>${md.renderInline(o.explain)}</div>`)
          .join('\n');
        return `<fieldset class="berth-quiz" data-quiz-id="${esc(q.id)}" data-multiple="${q.multiple}"><legend>${md.renderInline(q.question)}</legend>\n${opts}\n${explain}\n</fieldset>\n`;
      }
      case 'hint':
        return `<details class="berth-hint"><summary>Hint</summary>${md.render(c.markdown, { file: '', offset: 0, errors: [] })}</details>\n`;
      case 'sandbox': {
        // Hidden until the page has asked the server what its sandboxes are (GET /api/sandbox-facts).
        const data = Object.entries(c.when)
          .map(([k, v]) => ` data-${k}="${esc(v)}"`)
          .join('');
        return `<aside class="berth-sandbox-note"${data} hidden><p class="berth-sandbox-note-title">About this sandbox</p>${md.render(c.markdown, { file: '', offset: 0, errors: [] })}</aside>\n`;
      }
      default:
        return '';
    }
  };
  return md;
}

const md = createMarkdown();

/** Splits `---` front matter from the body; returns the body's first line number (1-based). */
function splitFrontMatter(source: string) {
  const m = /^---\r?\n([\s\S]*?)\r?\n---\r?\n?/.exec(source);
  if (!m) return null;
  return { yaml: m[1], body: source.slice(m[0].length), bodyLine: m[0].split('\n').length };
}

const HEADING_ATTRS = /\s*\{#([a-z0-9][a-z0-9-]*)((?:\s+\.[a-z-]+)*)\s*\}\s*$/;

export type ParseOptions = { file?: string };

export function parseLesson(id: string, source: string, opts: ParseOptions = {}): { lesson?: Lesson; errors: LessonError[] } {
  const file = opts.file ?? `lessons/${id}/lesson.md`;
  const errors: LessonError[] = [];
  const split = splitFrontMatter(source);
  if (!split) return { errors: [{ file, line: 1, message: 'front matter missing: the file must start with --- and a YAML block' }] };
  const env: Env = { file, offset: split.bodyLine - 1, errors };

  let meta: z.infer<typeof frontMatter> | undefined;
  const raw = yamlBody(split.yaml, 2, env, 'front matter');
  if (raw !== undefined) {
    const r = frontMatter.safeParse(raw ?? {});
    if (r.success) meta = r.data;
    else
      for (const i of r.error.issues) {
        const key = String(i.path[0] ?? '');
        const at = split.yaml.split('\n').findIndex((l) => l.startsWith(`${key}:`));
        const unknownKeys = i.code === 'unrecognized_keys' ? ((i as { keys?: string[] }).keys ?? []) : [];
        const keyLine = unknownKeys.length ? split.yaml.split('\n').findIndex((l) => l.startsWith(`${unknownKeys[0]}:`)) : at;
        errors.push({ file, line: 2 + Math.max(keyLine, 0), message: `front matter: ${i.path.join('.') || 'top level'}: ${i.message}` });
      }
  }

  const tokens = md.parse(split.body, env);
  const steps: Step[] = [];
  const bounds: { step: Step; from: number }[] = [];
  let introEnd = tokens.length;
  const assets = new Set<string>();
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    const line = env.offset + (t.map?.[0] ?? 0) + 1;
    if (t.type === 'inline') {
      for (const c of t.children ?? []) {
        const src = c.type === 'image' ? String(c.attrGet('src') ?? '') : '';
        if (src && !/^[a-z]+:|^\//i.test(src)) assets.add(src);
      }
    }
    if (t.type === 'heading_open' && t.tag === 'h2') {
      const inline = tokens[i + 1];
      const m = HEADING_ATTRS.exec(inline.content);
      if (!m) {
        errors.push({ file, line, message: `step heading "${inline.content}" needs an id: ## Title {#step-id}` });
        continue;
      }
      const classes = m[2]
        .trim()
        .split(/\s+/)
        .filter(Boolean)
        .map((c) => c.slice(1));
      const bad = classes.filter((c) => c !== 'exercise');
      if (bad.length) errors.push({ file, line, message: `unknown heading class .${bad.join(', .')} (only .exercise)` });
      const title = inline.content.slice(0, m.index).trim();
      // Drop the {#…} from what is rendered and give the heading its id.
      inline.content = title;
      inline.children = md.parseInline(title, env)[0]?.children ?? [];
      t.attrSet('id', m[1]);
      if (introEnd === tokens.length) introEnd = i;
      const step: Step = {
        id: m[1],
        title: title.replace(/^Exercise:\s*/, ''),
        exercise: classes.includes('exercise'),
        line,
        html: '',
        commands: [],
        verify: [],
        checks: [],
        quizzes: [],
      };
      steps.push(step);
      bounds.push({ step, from: i });
      continue;
    }
    if (t.type !== 'fence' || !t.meta) continue;
    const c = t.meta as Construct;
    const step = steps.at(-1);
    if (!step) {
      if (c.kind !== 'hint' && c.kind !== 'sandbox' && c.kind !== 'invalid')
        errors.push({ file, line, message: `a ${c.kind} block must be inside a step (after a ## heading)` });
      continue;
    }
    if (c.kind === 'run') step.commands.push({ node: c.node, text: c.text, interactive: c.interactive, line } satisfies Command);
    if (c.kind === 'verify') step.verify.push({ node: c.node, script: c.script });
    if (c.kind === 'check') step.checks.push(c.check);
    if (c.kind === 'quiz') step.quizzes.push(c.quiz);
  }
  for (let b = 0; b < bounds.length; b++) {
    const to = b + 1 < bounds.length ? bounds[b + 1].from : tokens.length;
    bounds[b].step.html = md.renderer.render(tokens.slice(bounds[b].from, to), md.options, env);
  }
  const introHtml = md.renderer.render(tokens.slice(0, introEnd), md.options, env);

  checkSteps(steps, meta?.nodes ?? 1, file, errors);
  if (!meta || errors.length) return { errors };
  return {
    errors,
    lesson: {
      id,
      title: meta.title,
      summary: meta.summary,
      duration: meta.duration,
      level: meta.level,
      prerequisites: meta.prerequisites,
      nodes: meta.nodes,
      files: Object.entries(meta.files).map(([workspacePath, sourcePath]) => ({ workspacePath, sourcePath })),
      assets: [...assets],
      introHtml,
      steps,
    },
  };
}

/** Rules that span constructs: ids, nodes, exercises, and what makes a step verifiable. */
function checkSteps(steps: Step[], nodes: number, file: string, errors: LessonError[]) {
  const seen = new Map<string, number>();
  const unique = (kind: string, id: string, line: number) => {
    const key = `${kind}:${id}`;
    if (seen.has(key)) errors.push({ file, line, message: `duplicate ${kind} id "${id}" (first at line ${seen.get(key)})` });
    else seen.set(key, line);
  };
  const onNode = (node: string, line: number, what: string) => {
    if (Number(node.slice(4)) > nodes) errors.push({ file, line, message: `${what} uses ${node}, but the lesson has nodes: ${nodes}` });
  };
  if (steps.length === 0) errors.push({ file, line: 1, message: 'a lesson needs at least one step (## Title {#id})' });
  for (const s of steps) {
    unique('step', s.id, s.line);
    for (const c of s.checks) {
      unique('check', c.id, c.line);
      onNode(c.node, c.line, `check ${c.id}`);
    }
    for (const q of s.quizzes) unique('quiz', q.id, q.line);
    for (const c of s.commands) onNode(c.node, c.line, 'run block');
    for (const v of s.verify) onNode(v.node, s.line, 'verify block');
    if (s.exercise) {
      if (s.commands.length)
        errors.push({ file, line: s.commands[0].line, message: `exercise step ${s.id} must not have run blocks: the learner solves it alone` });
      if (!s.checks.length) errors.push({ file, line: s.line, message: `exercise step ${s.id} needs at least one check` });
    } else if (s.commands.length && !s.checks.length) {
      errors.push({ file, line: s.line, message: `step ${s.id} has commands but no check` });
    }
    if (s.commands.some((c) => c.interactive) && s.checks.length && !s.verify.length) {
      errors.push({ file, line: s.line, message: `step ${s.id} has interactive commands and checks, so it needs a verify block` });
    }
  }
}
