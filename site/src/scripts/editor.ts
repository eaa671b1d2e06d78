// The editor tab, loaded only when it is first opened: a file tree over the file API and a Monaco
// editor with the languages a container course needs (Dockerfile, YAML, shell, …).
import * as monaco from 'monaco-editor/editor/editor.api.js';
import 'monaco-editor/features/codicon/register.js';
import 'monaco-editor/features/find/register.js';
import 'monaco-editor/features/bracketMatching/register.js';
import 'monaco-editor/features/clipboard/register.js';
import 'monaco-editor/features/comment/register.js';
import 'monaco-editor/features/contextmenu/register.js';
import 'monaco-editor/features/folding/register.js';
import 'monaco-editor/features/linesOperations/register.js';
import 'monaco-editor/features/multicursor/register.js';
import 'monaco-editor/features/wordHighlighter/register.js';
import 'monaco-editor/features/toggleTabFocusMode/register.js';
import 'monaco-editor/languages/definitions/dockerfile/register.js';
import 'monaco-editor/languages/definitions/yaml/register.js';
import 'monaco-editor/languages/definitions/shell/register.js';
import 'monaco-editor/languages/definitions/ini/register.js';
import 'monaco-editor/languages/definitions/python/register.js';
import 'monaco-editor/languages/definitions/javascript/register.js';
import 'monaco-editor/languages/definitions/markdown/register.js';
import 'monaco-editor/languages/definitions/html/register.js';
import 'monaco-editor/languages/definitions/css/register.js';
import EditorWorker from 'monaco-editor/editor/editor.worker.js?worker';
import { ApiFailure } from './api.ts';
import { confirmDialog } from './dialog.ts';
import { call, routePath, type Reply } from './client.ts';
import type { Session } from './session.ts';
import { currentTheme, onThemeChange } from './theme.ts';

(self as unknown as { MonacoEnvironment: { getWorker: () => Worker } }).MonacoEnvironment = { getWorker: () => new EditorWorker() };

type View = Reply<'GET /api/sessions/:id/files'>;
type Dir = Extract<View, { type: 'dir' }>;
type Entry = Dir['entries'][number];
type Ctx = { session: () => Session | null; ensureSession: () => Promise<boolean> };

const monacoTheme = () => (currentTheme() === 'dark' ? 'vs-dark' : 'vs');

export function mountEditor(panel: HTMLElement, ctx: Ctx) {
  panel.innerHTML = `
    <div class="editor-toolbar">
      <label class="editor-node" hidden>Node <select data-node></select></label>
      <button type="button" data-act="refresh">Refresh</button>
      <button type="button" data-act="new">New file…</button>
      <button type="button" data-act="download">Download workspace (.tar)</button>
      <span class="editor-file" data-file>No file open</span>
      <button type="button" data-act="save" class="primary" disabled>Save</button>
    </div>
    <p class="editor-msg" role="status" aria-live="polite" data-msg></p>
    <div class="editor-body">
      <nav class="file-tree" aria-label="Files in your workspace (/home/learner)"><ul data-tree></ul></nav>
      <div class="editor-main"><div class="editor-host" data-host></div><p class="editor-placeholder" data-placeholder>Choose a file on the left, or make a new one.</p></div>
    </div>
    <dialog data-new aria-labelledby="new-file-title">
      <form method="dialog">
        <h2 id="new-file-title">New file</h2>
        <label for="new-file-path">Path inside /home/learner</label>
        <input type="text" id="new-file-path" name="path" placeholder="app/Dockerfile" required pattern="[^/].*" autocomplete="off" />
        <div class="dialog-actions"><button value="cancel" type="submit" formnovalidate>Cancel</button><button value="ok" type="submit" class="primary">Create</button></div>
      </form>
    </dialog>`;
  const q = <T extends HTMLElement>(sel: string) => panel.querySelector<T>(sel)!;
  const tree = q<HTMLUListElement>('[data-tree]');
  const msg = q('[data-msg]');
  const fileLabel = q('[data-file]');
  const saveBtn = q<HTMLButtonElement>('[data-act=save]');
  const nodeSel = q<HTMLSelectElement>('[data-node]');
  const editor = monaco.editor.create(q('[data-host]'), {
    value: '',
    automaticLayout: true,
    theme: monacoTheme(),
    minimap: { enabled: false },
    fontSize: 14,
    scrollBeyondLastLine: false,
    tabSize: 2,
    ariaLabel: 'File editor',
    readOnly: true,
  });
  onThemeChange(() => monaco.editor.setTheme(monacoTheme()));
  let open: { node: string; path: string; saved: number } | null = null;
  let node = 'node1';
  /** The folder "Download" packs: the last folder opened in the tree, or the whole workspace. */
  let folder = '';
  const downloadBtn = q<HTMLButtonElement>('[data-act=download]');
  const setFolder = (p: string) => {
    folder = p;
    downloadBtn.textContent = p ? `Download ${p.split('/').pop()}/ (.tar)` : 'Download workspace (.tar)';
  };

  const say = (text: string, bad = false) => {
    msg.textContent = text;
    msg.dataset.bad = String(bad);
  };
  const readFile = (s: Session, p: string) => call('GET /api/sessions/:id/files', { params: { id: s.id }, query: { path: p, node }, token: s.token });
  const writeFile = (s: Session, p: string, on: string, content: string) =>
    call('PUT /api/sessions/:id/files', { params: { id: s.id }, query: { path: p, node: on }, token: s.token, body: { content } });
  const explain = (err: unknown) => {
    if (err instanceof ApiFailure && err.status === 404 && err.code === 'NOT_FOUND') return 'The file API is not available on this server yet.';
    // The server counts the request, not the file: say what the learner can act on.
    if (err instanceof ApiFailure && err.code === 'BODY_TOO_LARGE') return 'The file is larger than the editor saves; write it from the terminal instead.';
    return (err as Error).message;
  };
  const dirty = () => open !== null && editor.getModel()?.getAlternativeVersionId() !== open.saved;
  editor.onDidChangeModelContent(() => {
    saveBtn.disabled = !dirty();
    fileLabel.dataset.dirty = String(dirty());
  });
  editor.addCommand(monaco.KeyMod.CtrlCmd | monaco.KeyCode.KeyS, () => void save());

  async function listDir(p: string, into: HTMLUListElement) {
    const s = ctx.session();
    if (!s) return;
    try {
      const d = await readFile(s, p);
      if (d.type !== 'dir') return;
      into.replaceChildren(...d.entries.map((e) => entryItem(p ? `${p}/${e.name}` : e.name, e)));
      if (!d.entries.length) into.replaceChildren(Object.assign(document.createElement('li'), { className: 'tree-empty', textContent: '(empty)' }));
    } catch (err) {
      say(`Could not list ${p || 'the workspace'}: ${explain(err)}`, true);
    }
  }

  function entryItem(p: string, e: Entry): HTMLLIElement {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = `tree-${e.type}`;
    // The marker is its own hidden element: generated content would become part of the button's name.
    const mark = document.createElement('span');
    mark.className = 'tree-mark';
    mark.setAttribute('aria-hidden', 'true');
    b.append(mark, e.name);
    b.title = p;
    li.append(b);
    if (e.type === 'dir') {
      b.setAttribute('aria-expanded', 'false');
      const sub = document.createElement('ul');
      sub.hidden = true;
      li.append(sub);
      b.addEventListener('click', () => {
        const on = b.getAttribute('aria-expanded') !== 'true';
        b.setAttribute('aria-expanded', String(on));
        sub.hidden = !on;
        setFolder(on ? p : p.split('/').slice(0, -1).join('/'));
        if (on) void listDir(p, sub);
      });
    } else {
      b.addEventListener('click', () => void openFile(p));
    }
    return li;
  }

  async function openFile(p: string) {
    const s = ctx.session();
    if (!s) return;
    if (dirty() && !(await confirmDialog({ title: 'Discard changes?', text: `${open!.path} has changes that are not saved.`, ok: 'Discard' }))) return;
    try {
      const f = await readFile(s, p);
      if (f.type !== 'file') return;
      if (f.encoding === 'base64') {
        say(`${p} is a binary file (${f.size} bytes); the editor shows text only.`);
        return;
      }
      const uri = monaco.Uri.file(`/${node}/home/learner/${p}`);
      monaco.editor.getModel(uri)?.dispose();
      const old = editor.getModel();
      const model = monaco.editor.createModel(f.content, undefined, uri);
      editor.setModel(model);
      old?.dispose();
      editor.updateOptions({ readOnly: false });
      q('[data-placeholder]').hidden = true;
      open = { node, path: p, saved: model.getAlternativeVersionId() };
      fileLabel.textContent = node === 'node1' && nodeSel.options.length < 2 ? p : `${node}: ${p}`;
      saveBtn.disabled = true;
      say(`Opened ${p} (${model.getLanguageId()}). Ctrl+S saves.`);
      editor.focus();
    } catch (err) {
      say(`Could not open ${p}: ${explain(err)}`, true);
    }
  }

  async function save() {
    const s = ctx.session();
    if (!s || !open) return;
    const model = editor.getModel()!;
    const version = model.getAlternativeVersionId();
    try {
      const saved = open;
      // Text files end with a newline (POSIX tools, diffs and `cat` expect one); Monaco does not add it.
      const text = model.getValue();
      const content = text === '' || text.endsWith('\n') ? text : `${text}\n`;
      await writeFile(s, saved.path, saved.node, content);
      if (open === saved) open.saved = version;
      saveBtn.disabled = !dirty();
      fileLabel.dataset.dirty = String(dirty());
      say(`Saved ${saved.path}.`);
    } catch (err) {
      say(`Could not save: ${explain(err)}`, true);
    }
  }

  async function newFile() {
    const s = ctx.session();
    if (!s) return;
    const d = q<HTMLDialogElement>('dialog[data-new]');
    const input = d.querySelector('input')!;
    input.value = '';
    d.returnValue = 'cancel';
    d.showModal();
    await new Promise((r) => d.addEventListener('close', r, { once: true }));
    const p = input.value.trim().replace(/^\.?\/+/, '');
    if (d.returnValue !== 'ok' || !p) return;
    try {
      await writeFile(s, p, node, '');
      await listDir('', tree);
      await openFile(p);
    } catch (err) {
      say(`Could not create ${p}: ${explain(err)}`, true);
    }
  }

  function refreshNodes() {
    const s = ctx.session();
    const nodes = s?.nodes ?? ['node1'];
    q('.editor-node').hidden = nodes.length < 2;
    nodeSel.replaceChildren(...nodes.map((n) => Object.assign(document.createElement('option'), { value: n, textContent: n, selected: n === node })));
    if (!nodes.includes(node)) node = nodes[0];
  }

  function showNoSession() {
    tree.replaceChildren();
    const li = document.createElement('li');
    li.className = 'tree-empty';
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'primary';
    b.textContent = 'Start sandbox';
    b.addEventListener('click', () => void ctx.ensureSession());
    li.append('Start the sandbox to see and edit its files. ', b);
    tree.append(li);
  }

  async function reload() {
    refreshNodes();
    if (!ctx.session()) return showNoSession();
    await listDir('', tree);
  }

  nodeSel.addEventListener('change', () => {
    node = nodeSel.value;
    void reload();
  });
  q('[data-act=refresh]').addEventListener('click', () => {
    setFolder('');
    void reload();
  });
  q('[data-act=new]').addEventListener('click', () => void newFile());
  downloadBtn.addEventListener('click', () => void download());

  /** The folder as a tar from the server (the token goes in a header, so the file arrives through fetch). */
  async function download() {
    const s = ctx.session();
    if (!s) return;
    const what = folder || 'the workspace';
    say(`Packing ${what}…`);
    downloadBtn.disabled = true;
    try {
      const res = await fetch(routePath('GET /api/sessions/:id/archive', { params: { id: s.id }, query: { path: folder, node } }), {
        headers: { authorization: `Bearer ${s.token}` },
      });
      if (!res.ok) {
        const body = (await res.json().catch(() => null)) as { error?: { message?: string } } | null;
        throw new Error(body?.error?.message ?? `the server answered ${res.status}`);
      }
      const blob = await res.blob();
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? 'workspace.tar';
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
      say(`Downloaded ${what} as ${a.download} (${Math.max(1, Math.round(blob.size / 1024))} KiB).`);
    } catch (err) {
      say(`Could not download ${what}: ${err instanceof TypeError ? 'the Berth server is not reachable' : (err as Error).message}`, true);
    } finally {
      downloadBtn.disabled = false;
    }
  }
  saveBtn.addEventListener('click', () => void save());

  return {
    shown: () => {
      editor.layout();
      void reload();
    },
    sessionChanged: () => {
      if (!ctx.session()) {
        open = null;
        editor.getModel()?.dispose();
        editor.setModel(null);
        editor.updateOptions({ readOnly: true });
        fileLabel.textContent = 'No file open';
        q('[data-placeholder]').hidden = false;
        saveBtn.disabled = true;
      }
      if (!panel.hidden) void reload();
    },
  };
}
