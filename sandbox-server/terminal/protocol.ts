// The terminal's wire format: binary WebSocket frames, first byte an opcode (described for clients in the README, "Terminal protocol").
export const OP = {
  INPUT: 0x00,
  RESIZE: 0x01,
  ACK: 0x02,
  OUTPUT: 0x10,
  STATUS: 0x11,
  ERROR: 0x12,
} as const;

export type ClientFrame =
  | { op: 'input'; data: Buffer }
  | { op: 'resize'; cols: number; rows: number }
  | { op: 'ack'; bytes: number }
  | { op: 'invalid'; reason: string };

export function decodeClient(frame: Buffer): ClientFrame {
  if (frame.length === 0) return { op: 'invalid', reason: 'empty frame' };
  const body = frame.subarray(1);
  switch (frame[0]) {
    case OP.INPUT:
      return { op: 'input', data: body };
    case OP.RESIZE: {
      try {
        const { cols, rows } = JSON.parse(body.toString('utf8')) as { cols: unknown; rows: unknown };
        if (
          Number.isInteger(cols) &&
          Number.isInteger(rows) &&
          (cols as number) > 0 &&
          (rows as number) > 0 &&
          (cols as number) <= 1000 &&
          (rows as number) <= 500
        ) {
          return { op: 'resize', cols: cols as number, rows: rows as number };
        }
      } catch {
        /* falls through to invalid */
      }
      return { op: 'invalid', reason: 'resize wants {"cols":1..1000,"rows":1..500}' };
    }
    case OP.ACK:
      if (body.length !== 4) return { op: 'invalid', reason: 'ack wants a 4-byte count' };
      return { op: 'ack', bytes: body.readUInt32BE(0) };
    default:
      return { op: 'invalid', reason: `unknown opcode ${frame[0]}` };
  }
}

export const output = (data: Buffer) => Buffer.concat([Buffer.from([OP.OUTPUT]), data]);
export const status = (s: Record<string, unknown>) => Buffer.concat([Buffer.from([OP.STATUS]), Buffer.from(JSON.stringify(s))]);
export const error = (code: string, message: string) => Buffer.concat([Buffer.from([OP.ERROR]), Buffer.from(JSON.stringify({ code, message }))]);

export const encodeInput = (s: string | Buffer) => Buffer.concat([Buffer.from([OP.INPUT]), Buffer.from(s)]);
export const encodeResize = (cols: number, rows: number) => Buffer.concat([Buffer.from([OP.RESIZE]), Buffer.from(JSON.stringify({ cols, rows }))]);
export const encodeAck = (bytes: number) => {
  const b = Buffer.alloc(5);
  b[0] = OP.ACK;
  b.writeUInt32BE(bytes, 1);
  return b;
};

/** Close codes: the client must not reconnect after 4401/4404. */
/** LOST: the machine running the sandbox went away (the error frame before it says so). */
export const CLOSE = { NORMAL: 1000, BAD_TOKEN: 4401, GONE: 4404, LOST: 4410, PROTOCOL: 4400, ENGINE: 4503 } as const;
