import test from 'ava';
import { ping } from '../../runtime/bootstrap/engine.ts';

test('ping refuses hosts it cannot parse and sockets that do not exist', async (t) => {
  t.false(await ping('ssh://nowhere'));
  t.false(await ping('unix:///nonexistent/berth-test.sock'));
});
