// One error type for the Incus bring-up, with a machine code like the engine's EngineError.
export class IncusError extends Error {
  code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}
