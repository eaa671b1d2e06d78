// The editor's file API: list, read, write, create and delete inside the learner's workspace.
// Everything runs in the node as the learner (uid 1000), so the kernel enforces what the learner may
// touch; the scripts below add the workspace boundary: a path, once every symlink in it is resolved,
// must stay under the workspace.
import { ApiError } from '../errors.ts';
import type { ExecResult, RunOptions } from '../engine/exec.ts';

export const WORKSPACE = '/home/learner';

export type Entry = { name: string; type: 'file' | 'dir' | 'symlink' | 'other'; size: number; mtime: string };
export type DirView = { type: 'dir'; path: string; entries: Entry[] };
export type FileView = { type: 'file'; path: string; size: number; encoding: 'utf8' | 'base64'; content: string };

type Run = (cmd: string, opts: RunOptions) => Promise<ExecResult>;

/** Single-quotes a string for bash. */
export const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

// Exit codes the scripts use to say what went wrong, and what the learner reads for each.
const FAIL: Record<number, () => ApiError> = {
  91: () => new ApiError(400, 'PATH_OUTSIDE_WORKSPACE', `The path leaves the workspace ${WORKSPACE}.`),
  92: () => new ApiError(404, 'FILE_NOT_FOUND', 'No such file or folder.'),
  93: () => new ApiError(413, 'FILE_TOO_LARGE', 'The file is larger than the editor accepts.'),
  94: () => new ApiError(400, 'VALIDATION_FAILED', 'The workspace folder itself cannot be replaced or deleted.'),
  95: () => new ApiError(409, 'CONFLICT', 'A folder is in the way: that path is a folder.'),
  96: () => new ApiError(409, 'CONFLICT', 'A file is in the way: a parent of that path is a file.'),
};

// Resolves $1 against the workspace into $p (symlinks followed) and refuses anything outside it.
const RESOLVE = `W=${WORKSPACE}; case "$1" in /*) a="$1";; *) a="$W/$1";; esac
p=$(realpath -m -- "$a") || exit 91
case "$p" in "$W"|"$W"/*) ;; *) exit 91;; esac`;

/** For a download: resolves $1 to a folder in the workspace; sets $d (where tar starts), $b (what it packs), $n (a name). */
export const archiveScript = `${RESOLVE}
[ -d "$p" ] || exit 92
if [ "$p" = "$W" ]; then d="$W"; b=.; n=workspace; else d=$(dirname -- "$p"); b=$(basename -- "$p"); n="$b"; fi`;

export function checkPath(path: string): string {
  if (path.length > 4096 || path.includes('\0') || /[\r\n]/.test(path)) {
    throw new ApiError(400, 'VALIDATION_FAILED', 'path must be at most 4096 characters, without NUL or line breaks.');
  }
  return path === '' ? '.' : path;
}

/** Path of `p` relative to the workspace, for answers ("" for the workspace itself). */
const rel = (p: string) => (p === WORKSPACE ? '' : p.slice(WORKSPACE.length + 1));

function fail(r: ExecResult, what: string): never {
  const known = FAIL[r.exitCode];
  if (known) throw known();
  throw new ApiError(500, 'SANDBOX_FAILED', `${what} failed in the sandbox: ${(r.stderr || r.stdout).trim().slice(0, 300)}`);
}

/** Bytes that are not valid UTF-8, or hold NUL, are returned base64-encoded. */
function asText(b: Buffer): { encoding: 'utf8' | 'base64'; content: string } {
  if (!b.includes(0)) {
    try {
      return { encoding: 'utf8', content: new TextDecoder('utf-8', { fatal: true }).decode(b) };
    } catch {
      /* binary */
    }
  }
  return { encoding: 'base64', content: b.toString('base64') };
}

export class Files {
  run: Run;
  maxBytes: number;
  constructor(run: Run, maxBytes: number) {
    this.run = run;
    this.maxBytes = maxBytes;
  }

  async read(path: string): Promise<DirView | FileView> {
    const script = `${RESOLVE}
[ -e "$p" ] || exit 92
printf '%s\\n' "$p"
if [ -d "$p" ]; then echo D; find "$p" -mindepth 1 -maxdepth 1 -printf '%y\\t%s\\t%T@\\t%f\\0'; exit 0; fi
s=$(stat -c %s -- "$p"); printf 'F\\t%s\\n' "$s"
[ "$s" -le ${this.maxBytes} ] || exit 93
base64 -w0 -- "$p"`;
    const r = await this.run(`set -- ${shq(checkPath(path))}\n${script}`, { timeoutMs: 15_000, maxOutput: Math.ceil(this.maxBytes * 1.4) + 64 * 1024 });
    if (r.exitCode !== 0) fail(r, 'Reading');
    const [abs, kind, ...rest] = r.stdout.split('\n');
    if (kind === 'D') {
      const entries = rest
        .join('\n')
        .split('\0')
        .filter(Boolean)
        .map((line): Entry => {
          const [t, size, mtime, ...name] = line.split('\t');
          const type = t === 'f' ? 'file' : t === 'd' ? 'dir' : t === 'l' ? 'symlink' : 'other';
          return { name: name.join('\t'), type, size: Number(size), mtime: new Date(Number(mtime) * 1000).toISOString() };
        });
      // The lesson's own folders and files first; dotfiles (shell and tool settings) after them.
      const dot = (e: Entry) => Number(e.name.startsWith('.'));
      entries.sort((a, b) => dot(a) - dot(b) || Number(b.type === 'dir') - Number(a.type === 'dir') || a.name.localeCompare(b.name));
      return { type: 'dir', path: rel(abs), entries };
    }
    const bytes = Buffer.from(rest.join(''), 'base64');
    return { type: 'file', path: rel(abs), size: bytes.length, ...asText(bytes) };
  }

  async write(path: string, content: Buffer): Promise<{ path: string; size: number }> {
    if (content.length > this.maxBytes) throw FAIL[93]();
    const script = `${RESOLVE}
[ "$p" != "$W" ] || exit 94
[ -d "$p" ] && exit 95
d=$(dirname -- "$p"); mkdir -p -- "$d" 2>/dev/null || exit 96
cat > "$p" && printf '%s\\n' "$p"`;
    const r = await this.run(`set -- ${shq(checkPath(path))}\n${script}`, { timeoutMs: 15_000, maxOutput: 16 * 1024, stdin: content });
    if (r.exitCode !== 0) fail(r, 'Writing');
    return { path: rel(r.stdout.trim()), size: content.length };
  }

  async mkdir(path: string): Promise<{ path: string }> {
    const script = `${RESOLVE}
[ -e "$p" ] && [ ! -d "$p" ] && exit 96
mkdir -p -- "$p" 2>/dev/null || exit 96
printf '%s\\n' "$p"`;
    const r = await this.run(`set -- ${shq(checkPath(path))}\n${script}`, { timeoutMs: 15_000, maxOutput: 16 * 1024 });
    if (r.exitCode !== 0) fail(r, 'Creating the folder');
    return { path: rel(r.stdout.trim()) };
  }

  /** Deletes a file, a symlink (not its target) or a folder with its contents. */
  async remove(path: string): Promise<void> {
    // The parent is resolved, the last part is not: deleting a symlink that points outside is allowed.
    const script = `W=${WORKSPACE}; case "$1" in /*) a="$1";; *) a="$W/$1";; esac
b=$(basename -- "$a"); case "$b" in .|..|/) exit 94;; esac
d=$(realpath -m -- "$(dirname -- "$a")") || exit 91
case "$d" in "$W"|"$W"/*) ;; *) exit 91;; esac
p="$d/$b"; [ "$p" != "$W" ] || exit 94
[ -e "$p" ] || [ -L "$p" ] || exit 92
rm -rf -- "$p"`;
    const r = await this.run(`set -- ${shq(checkPath(path))}\n${script}`, { timeoutMs: 30_000, maxOutput: 16 * 1024 });
    if (r.exitCode !== 0) fail(r, 'Deleting');
  }
}
