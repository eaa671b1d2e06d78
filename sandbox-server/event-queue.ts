// The queue behind one server-sent-events stream (a learner's session feed, an instructor's workshop feed): events
// are pushed as they happen and written in order; a reader that cannot keep up is cut off (its page reconnects and
// starts from a fresh state); a quiet spell is reported so that the stream can send a keep-alive.
import type { SSEStreamingApi } from 'hono/streaming';

export class EventQueue<E> {
  private readonly queue: E[] = [];
  private wake: (() => void) | null = null;
  private closed = false;
  private readonly stream: SSEStreamingApi;
  private readonly max: number;

  constructor(stream: SSEStreamingApi, max: number) {
    this.stream = stream;
    this.max = max;
    stream.onAbort(() => this.close());
  }

  push(e: E) {
    if (this.closed) return;
    if (this.queue.length > this.max) {
      this.closed = true;
      this.stream.abort();
      return;
    }
    this.queue.push(e);
    this.wake?.();
  }

  close() {
    this.closed = true;
    this.wake?.();
  }

  get isClosed() {
    return this.closed;
  }

  /** Each event in order, or null after `quietMs` without one; ends when the stream is closed. */
  async *events(quietMs: number): AsyncGenerator<E | null> {
    while (!this.closed) {
      const e = this.queue.shift();
      if (e !== undefined) {
        yield e;
        continue;
      }
      const quiet = await new Promise<boolean>((r) => {
        const t = setTimeout(() => {
          this.wake = null;
          r(true);
        }, quietMs);
        this.wake = () => {
          clearTimeout(t);
          this.wake = null;
          r(false);
        };
      });
      if (quiet && !this.closed) yield null;
    }
  }
}
