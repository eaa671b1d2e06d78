// One error type for the API: a status, a machine code and a message that is safe to show a learner.
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

export type ErrorCode =
  | 'VALIDATION_FAILED'
  | 'BODY_TOO_LARGE'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN_ORIGIN'
  | 'SESSION_NOT_FOUND'
  | 'NODE_NOT_FOUND'
  | 'LESSON_NOT_FOUND'
  | 'CHECK_NOT_FOUND'
  | 'EXEC_TIMEOUT'
  | 'RATE_LIMITED'
  | 'OUT_OF_CAPACITY'
  | 'ENGINE_UNAVAILABLE'
  | 'SANDBOX_FAILED'
  | 'NOT_FOUND'
  | 'INTERNAL'
  | 'HOST_DISK_FULL'
  | 'FILE_NOT_FOUND'
  | 'FILE_TOO_LARGE'
  | 'PATH_OUTSIDE_WORKSPACE'
  | 'CONFLICT'
  | 'PREVIEW_UNREACHABLE'
  | 'PREVIEW_BAD_RESPONSE'
  | 'PORT_NOT_ALLOWED'
  | 'WORKSHOP_NOT_FOUND'
  | 'LEARNER_NOT_FOUND'
  | 'JOIN_CODE_INVALID'
  | 'WORKSHOP_FULL'
  | 'WORKSHOP_ENDED'
  | 'WORKSHOP_NOT_OPEN'
  | 'NAME_TAKEN'
  | 'NOT_IN_WORKSHOP'
  | 'NO_SANDBOX'
  | 'QUIZ_NOT_FOUND'
  | 'WORKSHOP_SESSION'
  | 'STEP_NOT_FOUND'
  | 'REPLAY_RUNNING'
  | 'REPLAY_NOT_FOUND'
  | 'NODES_MISSING'
  | 'NOT_MEASURABLE'
  | 'MACHINE_LOST'
  | 'MACHINE_MAINTENANCE'
  | 'MACHINE_NOT_FOUND'
  | 'NO_MACHINES';

export class ApiError extends HTTPException {
  code: ErrorCode;
  constructor(status: ContentfulStatusCode, code: ErrorCode, message: string, cause?: unknown) {
    // The cause is for the server's log only; learners see the message.
    super(status, { message, cause });
    this.code = code;
  }
}

/** A setting in the environment is wrong: the message names the variable (config.ts). */
export class ConfigError extends Error {}

export const notFound = (what: 'session' | 'node' | 'lesson' | 'check', id: string) => {
  const code = ({ session: 'SESSION_NOT_FOUND', node: 'NODE_NOT_FOUND', lesson: 'LESSON_NOT_FOUND', check: 'CHECK_NOT_FOUND' } as const)[what];
  return new ApiError(404, code, `No ${what} ${JSON.stringify(id)}.`);
};

/**
 * Why a session's machine is gone for it: `lost`, the machine went away (an Incus cluster member gone offline), or
 * `maintenance`, the operator drained it for planned maintenance and the session was ended (sandboxes/manager.ts).
 */
export type MachineGone = 'lost' | 'maintenance';

/** The session's nodes were on a machine that is gone (see MachineGone): nothing of it can be reached. */
export const machineGone = (why: MachineGone) =>
  why === 'maintenance'
    ? new ApiError(
        503,
        'MACHINE_MAINTENANCE',
        "This sandbox's machine was taken down for planned maintenance, and the sandbox with it. Start a new sandbox to go on (it starts on another machine); your progress in the lessons is kept.",
      )
    : new ApiError(
        503,
        'MACHINE_LOST',
        'The machine running this sandbox went away, and the sandbox with it. Start a new sandbox to go on; your progress in the lessons is kept.',
      );

export const machineLost = () => machineGone('lost');

export function errorBody(code: string, message: string, requestId: string) {
  return { error: { code, message, requestId } };
}
