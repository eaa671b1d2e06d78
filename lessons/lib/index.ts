// The shared lesson module: the site's build and the server both read lessons through it.
export { parseLesson } from './parse.ts';
export { loadFakes, loadLessons, solutionPath } from './load.ts';
export { formatReport, verifyLesson, type LessonReport } from './verify.ts';
export type { Check, Command, Lesson, LessonError, Quiz, Step } from './schema.ts';
export { actionsFor, referenceFor, replay, replayPlan, runActions, type Action, type PlannedStep, type ReferenceCommand, type ReplayEvent } from './replay.ts';
