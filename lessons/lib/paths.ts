// Where a lesson's files live. No parser here: the server's replay imports it without loading markdown-it.
import { join } from 'node:path';

export function solutionPath(dir: string, lessonId: string, stepId: string) {
  return join(dir, lessonId, 'solutions', `${stepId}.sh`);
}
