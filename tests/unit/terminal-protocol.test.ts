import test from 'ava';
import { decodeClient, encodeAck, encodeInput, encodeResize, OP, output } from '../../sandbox-server/terminal/protocol.ts';
import { History } from '../../sandbox-server/terminal/history.ts';

test('client frames round-trip and bad ones are named', (t) => {
  t.deepEqual(decodeClient(encodeInput('ls\r')), { op: 'input', data: Buffer.from('ls\r') });
  t.deepEqual(decodeClient(encodeResize(120, 40)), { op: 'resize', cols: 120, rows: 40 });
  t.deepEqual(decodeClient(encodeAck(65536)), { op: 'ack', bytes: 65536 });
  t.is(decodeClient(Buffer.alloc(0)).op, 'invalid');
  t.is(decodeClient(Buffer.from([0x7f])).op, 'invalid');
  t.is(decodeClient(Buffer.concat([Buffer.from([OP.RESIZE]), Buffer.from('{"cols":0,"rows":5}')])).op, 'invalid');
  t.is(decodeClient(Buffer.from([OP.ACK, 1, 2])).op, 'invalid');
  t.deepEqual([...output(Buffer.from([1, 2, 255]))], [OP.OUTPUT, 1, 2, 255]);
});

test('history keeps the last bytes of each tab within its bound', (t) => {
  const h = new History(10, 2);
  h.append('s/node1/1', Buffer.from('0123456789'));
  h.append('s/node1/1', Buffer.from('abc'));
  t.is(h.replay('s/node1/1').toString(), '3456789abc'.slice(-10));
  t.true(h.replay('s/node1/1').length <= 10);
  h.append('s/node1/2', Buffer.from('x'));
  h.append('t/node1/1', Buffer.from('y'));
  t.is(h.replay('s/node1/1').length, 0, 'the oldest tab is forgotten past maxTabs');
  h.forgetSession('t');
  t.is(h.replay('t/node1/1').length, 0);
});
