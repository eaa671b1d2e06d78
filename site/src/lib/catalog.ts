// Build time only: reads the lessons through the shared lesson module and shapes them for the pages.
import { loadLessons, type Lesson } from '../../../lessons/lib/index.ts';

declare const __BERTH_LESSONS_DIR__: string;

let loaded: Lesson[] | undefined;

/** Every lesson that parses; a broken one is reported with file and line and left out, as the server does. */
export function lessons(): Lesson[] {
  if (loaded) return loaded;
  const { lessons: all, errors } = loadLessons(__BERTH_LESSONS_DIR__);
  for (const e of errors) console.warn(`[site] lesson skipped: ${e.file}:${e.line}: ${e.message}`);
  loaded = all;
  return all;
}

export const lessonsDir = () => __BERTH_LESSONS_DIR__;

export function lessonById(id: string): Lesson | undefined {
  return lessons().find((l) => l.id === id);
}

export const lessonUrl = (id: string) => `/lessons/${id}/`;

/** What the page's script needs to keep progress: ids only, no answers. */
export function lessonShape(l: Lesson) {
  return {
    id: l.id,
    title: l.title,
    nodes: l.nodes,
    steps: l.steps.map((s) => ({ id: s.id, title: s.title, checks: s.checks.map((c) => c.id), quizzes: s.quizzes.map((q) => q.id) })),
  };
}
export type LessonShape = ReturnType<typeof lessonShape>;

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/**
 * Adds the controls to the constructs the lesson module renders (its markup is fixed: see
 * lessons/lib/parse.ts), so buttons are in the HTML from the first paint and nothing shifts later.
 */
export function enhance(html: string): string {
  return (
    html
      .replace(
        /<div class="berth-cmd" data-node="(node\d)" data-interactive="(true|false)"><pre><code>([\s\S]*?)<\/code><\/pre><\/div>/g,
        (_m, node: string, interactive: string, code: string) => {
          const first = code.split('\n')[0].replace(/&[a-z#0-9]+;/g, (e) => ({ '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'" })[e] ?? e);
          const label = `Run on ${node}: ${first.length > 60 ? `${first.slice(0, 60)}…` : first}`;
          return (
            `<div class="berth-cmd" data-node="${node}" data-interactive="${interactive}">` +
            `<div class="cmd-bar"><span class="cmd-node">${node}</span>${interactive === 'true' ? '<span class="cmd-tag">interactive</span>' : ''}` +
            `<button type="button" class="cmd-copy" data-action="copy" aria-label="Copy command">Copy</button>` +
            `<button type="button" class="cmd-run" data-action="run" aria-label="${esc(label)}">Run ▸</button></div>` +
            `<pre><code>${code}</code></pre></div>`
          );
        },
      )
      .replace(
        /<div class="berth-check" data-check-id="([a-z0-9-]+)" data-node="(node\d)"><span class="berth-check-title">([\s\S]*?)<\/span><\/div>/g,
        (_m, id: string, node: string, title: string) =>
          `<div class="berth-check" data-check-id="${id}" data-node="${node}">` +
          `<span class="check-icon" aria-hidden="true"></span><span class="berth-check-title" id="check-title-${id}">${title}</span>` +
          `<button type="button" class="check-run" data-action="check" aria-describedby="check-title-${id}">Check</button>` +
          `<div class="check-result" role="status" aria-live="polite"></div></div>`,
      )
      // Questions: the page says plainly whether one or several answers are wanted, and carries no answers
      // (the server judges them: POST /api/lessons/:id/quizzes/:quiz/answer), so the source gives nothing away.
      .replace(
        /<fieldset class="berth-quiz" data-quiz-id="([a-z0-9-]+)" data-multiple="(true|false)"><legend>([\s\S]*?)<\/legend>/g,
        (_m, id: string, multiple: string, legend: string) =>
          `<fieldset class="berth-quiz" data-quiz-id="${id}" data-multiple="${multiple}" aria-describedby="quiz-kind-${id}">` +
          `<legend>${legend}</legend><p class="quiz-kind" id="quiz-kind-${id}">${multiple === 'true' ? 'Several answers are right: choose all that apply.' : 'One answer is right: choose one.'}</p>`,
      )
      .replace(/<div class="berth-quiz-explain" data-option="\d+" data-correct="(?:true|false)" hidden>[\s\S]*?<\/div>\n?/g, '')
      .replace(
        /<\/fieldset>/g,
        '<div class="quiz-explanations" data-explanations></div>' +
          '<div class="quiz-actions"><button type="button" class="quiz-answer" data-action="answer">Answer</button>' +
          '<span class="quiz-verdict" role="status" aria-live="polite"></span></div></fieldset>',
      )
      .replace(/<img /g, '<img loading="lazy" decoding="async" ')
  );
}
