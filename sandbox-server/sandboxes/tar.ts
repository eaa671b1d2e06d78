// A minimal ustar writer for seeding files: entries owned by uid 1000 and written by `tar -x` as the learner.
export type TarEntry = { path: string; content: Buffer; mode?: number };

function header(name: string, size: number, mode: number, type: '0' | '5'): Buffer {
  const h = Buffer.alloc(512);
  if (Buffer.byteLength(name) > 100) throw new Error(`path too long for the seed archive: ${name}`);
  h.write(name, 0, 100, 'utf8');
  h.write(mode.toString(8).padStart(7, '0') + '\0', 100);
  h.write('0001750\0', 108); // uid 1000
  h.write('0001750\0', 116); // gid 1000
  h.write(size.toString(8).padStart(11, '0') + '\0', 124);
  h.write(
    Math.floor(Date.now() / 1000)
      .toString(8)
      .padStart(11, '0') + '\0',
    136,
  );
  h.write('        ', 148);
  h.write(type, 156);
  h.write('ustar\0' + '00', 257);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

export function packFiles(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  const dirs = new Set<string>();
  for (const e of entries) {
    const clean = e.path.replace(/^\/+/, '');
    if (clean.split('/').some((p) => p === '..' || p === '')) throw new Error(`bad seed path: ${e.path}`);
    const segs = clean.split('/');
    for (let i = 1; i < segs.length; i++) {
      const d = segs.slice(0, i).join('/') + '/';
      if (!dirs.has(d)) {
        dirs.add(d);
        parts.push(header(d, 0, 0o755, '5'));
      }
    }
    parts.push(header(clean, e.content.length, e.mode ?? 0o644, '0'), e.content);
    const pad = (512 - (e.content.length % 512)) % 512;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}
