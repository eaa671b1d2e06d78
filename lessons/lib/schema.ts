// The lesson format's schemas. The descriptions are the authoring reference (lessons/FORMAT.md).
// No I/O here: the parser and the loader use these.
import { z } from 'zod';

const lessonId = z.string().regex(/^\d{2}-[a-z0-9-]+$/, 'a lesson id such as 03-namespaces');
const nodeName = z.string().regex(/^node[1-5]$/, 'node1 … node5');

export const frontMatter = z.strictObject({
  title: z.string().min(3).max(80).describe('Title shown in the catalogue and on the page.'),
  summary: z.string().min(10).max(240).describe('One sentence for the catalogue.'),
  duration: z.number().int().min(1).max(240).describe('Minutes a learner needs, as a whole number.'),
  level: z.enum(['beginner', 'intermediate', 'advanced']).describe('beginner, intermediate or advanced.'),
  prerequisites: z.array(lessonId).default([]).describe('Lesson ids (folder names) to take first.'),
  nodes: z.number().int().min(1).max(5).default(1).describe('Learner engines the lesson needs: node1 … nodeN.'),
  files: z
    .record(z.string().regex(/^(?!\/)(?!.*\.\.)[\w./-]+$/, 'a relative path inside the workspace'), z.string())
    .default({})
    .describe('Files seeded into the workspace: workspace path → path inside this lesson folder.'),
});

/** A check's or a quiz's id. */
const blockId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]*$/)
  .describe('Unique within the lesson.');

export const checkBlock = z.strictObject({
  id: blockId,
  title: z.string().min(3).describe('What the learner should have achieved, shown next to the Check button.'),
  node: nodeName.default('node1').describe('Node the script runs on.'),
  script: z.string().min(1).describe('Bash run as the learner on that node; exit status 0 means pass. Read engine state.'),
  fail: z.string().min(3).describe('Shown when the check fails: say what to do.'),
  pass: z.string().optional().describe('Shown when the check passes.'),
});

export const quizBlock = z.strictObject({
  id: blockId,
  question: z.string().min(3).describe('The question.'),
  multiple: z.boolean().default(false).describe('true when several options may be correct.'),
  options: z
    .array(
      z.strictObject({
        text: z.coerce.string().min(1).describe('The option as shown.'),
        correct: z.boolean().default(false).describe('Whether choosing it is right.'),
        explain: z.string().min(3).describe('Why it is right or wrong, shown after answering.'),
      }),
    )
    .min(2)
    .max(8)
    .describe('Two to eight options.'),
});

export type FrontMatter = z.infer<typeof frontMatter>;
export type CheckBlock = z.infer<typeof checkBlock>;
export type QuizBlock = z.infer<typeof quizBlock>;

export type LessonError = { file: string; line: number; message: string };

export type Command = { node: string; text: string; interactive: boolean; line: number };
export type Check = CheckBlock & { line: number };
export type Quiz = QuizBlock & { line: number };
export type Step = {
  id: string;
  title: string;
  exercise: boolean;
  line: number;
  html: string;
  commands: Command[];
  verify: { node: string; script: string }[];
  checks: Check[];
  quizzes: Quiz[];
};
export type Lesson = {
  id: string;
  title: string;
  summary: string;
  duration: number;
  level: FrontMatter['level'];
  prerequisites: string[];
  nodes: number;
  files: { workspacePath: string; sourcePath: string }[];
  assets: string[];
  introHtml: string;
  steps: Step[];
};

/** Fence info strings that name Berth constructs. */
export const CONSTRUCTS = ['run', 'verify', 'check', 'quiz', 'hint', 'sandbox'] as const;

/**
 * Facts about the sandboxes a Berth server gives learners, which a `sandbox` note may depend on (FORMAT.md):
 * `engine` is rootless (the Docker provider: a rootless dockerd in an unprivileged container) or rootful (the
 * Incus provider: a rootful dockerd in a system container); `ipvs` says whether the host kernel has IPVS
 * (Swarm's routing mesh and service virtual IPs).
 */
export const SANDBOX_FACTS = { engine: ['rootless', 'rootful'], ipvs: ['yes', 'no'] } as const;
export type SandboxFacts = { engine: (typeof SANDBOX_FACTS.engine)[number]; ipvs: (typeof SANDBOX_FACTS.ipvs)[number] };

/** A command line ending in `# fails` or `# fails: why` is expected to exit non-zero (lessons/FORMAT.md). */
export const FAILS_MARKER = /(?:^|\s)#\s*fails\b(?::.*)?$/;
