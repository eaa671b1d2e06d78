// Reading a server-sent-event response (text/event-stream) in tests: event by event, or as text until a pattern.

/** Reads a text/event-stream body one event at a time (keep-alive comments skipped). */
export function events(r: Response) {
  const reader = r.body!.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  return {
    async next(): Promise<{ event: string; data: unknown }> {
      for (;;) {
        const end = buf.indexOf('\n\n');
        if (end >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const event = /^event: ?(.*)$/m.exec(block)?.[1];
          if (event) return { event, data: JSON.parse(/^data: ?(.*)$/m.exec(block)?.[1] ?? 'null') };
          continue;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('the stream ended');
        buf += decoder.decode(value, { stream: true });
      }
    },
    cancel: () => reader.cancel(),
  };
}

/** The body read as text so far; until(re) reads on until `re` matches it (or the stream ends: then null). */
export function streamText(r: Response) {
  const reader = r.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  return {
    async until(re: RegExp): Promise<RegExpExecArray | null> {
      while (!re.test(text)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      return re.exec(text);
    },
    /** Ends the reading (a stream already ended or aborted is fine). */
    cancel: () => reader.cancel().catch(() => {}),
  };
}
