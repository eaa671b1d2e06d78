import test from 'ava';
import { startServer } from '../helpers/server.ts';

test('session creation is rate limited per client address', async (t) => {
  // A lesson that does not exist fails after the rate check, so no sandbox is created here.
  const s = await startServer({ BERTH_CREATE_RATE_PER_MIN: '3' });
  try {
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await s.api('/api/sessions', { method: 'POST', json: { lesson: 'zz-missing' } })).status);
    t.deepEqual(statuses, [404, 404, 404, 429, 429]);
  } finally {
    await s.stop();
  }
});
