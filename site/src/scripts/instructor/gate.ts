// The instructor pages start behind this: without a token (or with one the server refuses) the page asks
// for it; the first start of a Berth server prints one to its log.
import { adminApi, adminToken, describe, forgetToken, isUnauthorized, saveToken } from './admin.ts';

export function tokenGate(onReady: () => void) {
  const gate = document.querySelector<HTMLFormElement>('[data-token-gate]')!;
  const content = document.querySelector<HTMLElement>('[data-instructor]')!;
  const input = gate.querySelector<HTMLInputElement>('input[name="token"]')!;
  const remember = gate.querySelector<HTMLInputElement>('input[name="remember"]')!;
  const error = gate.querySelector<HTMLElement>('[data-gate-error]')!;
  let started = false;

  const show = (message = '') => {
    gate.hidden = false;
    content.hidden = true;
    error.textContent = message;
    input.focus();
  };
  const ready = () => {
    gate.hidden = true;
    content.hidden = false;
    if (!started) {
      started = true;
      onReady();
    }
  };

  gate.addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    if (!token) return show('Paste the instructor token.');
    saveToken(token, remember.checked);
    try {
      await adminApi('GET /api/workshops', {});
      input.value = '';
      ready();
    } catch (err) {
      forgetToken();
      show(isUnauthorized(err) ? 'The server refused this token.' : describe(err));
    }
  });
  document.querySelector('[data-forget-token]')?.addEventListener('click', () => {
    forgetToken();
    location.reload();
  });

  // Deferred, so that the caller's own setup (which holds on to what this returns) is complete first.
  if (adminToken()) queueMicrotask(ready);
  else show();
  return {
    /** The saved token stopped working (revoked, or another server): ask again. */
    refused() {
      forgetToken();
      show('The server refused the saved token. Enter it again.');
    },
  };
}
