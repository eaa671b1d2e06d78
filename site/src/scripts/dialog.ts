// A confirmation in the page's own <dialog> (native: focus is trapped and restored, Escape cancels).
export function confirmDialog(opts: { title: string; text: string; ok: string }): Promise<boolean> {
  const d = document.querySelector<HTMLDialogElement>('dialog[data-confirm]');
  if (!d || typeof d.showModal !== 'function') return Promise.resolve(window.confirm(`${opts.title}\n\n${opts.text}`));
  d.querySelector('[data-confirm-title]')!.textContent = opts.title;
  d.querySelector('[data-confirm-text]')!.textContent = opts.text;
  d.querySelector('[data-confirm-ok]')!.textContent = opts.ok;
  d.returnValue = 'cancel';
  return new Promise((resolve) => {
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
    d.showModal();
  });
}
