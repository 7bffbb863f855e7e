import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { CellScheduler } from './cell-scheduler.js';

const body = (s: string) => Buffer.from(s);
function drain(s: CellScheduler, max: number, perRound: number): string[] {
  const out: (number | Buffer)[] = [];
  s.take(max, perRound, out);
  const names: string[] = [];
  for (let i = 0; i < out.length; i += 3) names.push(`${out[i]}:${(out[i + 2] as Buffer).toString()}`);
  return names;
}

test('circuits take turns, a round of at most perRound cells each, and keep their own order', () => {
  const s = new CellScheduler();
  for (let i = 0; i < 5; i++) s.push(1, 3, body(`a${i}`));
  s.push(2, 3, body('b0'));
  for (let i = 0; i < 3; i++) s.push(3, 3, body(`c${i}`));
  assert.equal(s.size, 9);
  assert.deepEqual(drain(s, 100, 2), [
    '1:a0',
    '1:a1',
    '2:b0',
    '3:c0',
    '3:c1',
    '1:a2',
    '1:a3',
    '3:c2',
    '1:a4',
  ]);
  assert.equal(s.size, 0);
});

test('take stops at max; the next take starts with the next circuit in the ring', () => {
  const s = new CellScheduler();
  for (let i = 0; i < 4; i++) s.push(1, 3, body(`a${i}`));
  for (let i = 0; i < 4; i++) s.push(2, 3, body(`b${i}`));
  assert.deepEqual(drain(s, 3, 2), ['1:a0', '1:a1', '2:b0']);
  assert.deepEqual(drain(s, 3, 2), ['1:a2', '1:a3', '2:b1']);
  assert.deepEqual(drain(s, 10, 2), ['2:b2', '2:b3']);
  assert.equal(s.size, 0);
});

test('property: every cell comes out once, in its circuit order, however pushes and takes interleave', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.record({ push: fc.integer({ min: 0, max: 5 }) }),
          fc.record({ take: fc.integer({ min: 1, max: 20 }), per: fc.integer({ min: 1, max: 15 }) }),
        ),
        { maxLength: 200 },
      ),
      (ops) => {
        const s = new CellScheduler();
        const sent = new Map<number, number>();
        const got = new Map<number, number[]>();
        const out: (number | Buffer)[] = [];
        for (const op of ops) {
          if ('push' in op) {
            const n = sent.get(op.push) ?? 0;
            sent.set(op.push, n + 1);
            s.push(op.push, 3, Buffer.from(String(n)));
          } else s.take(op.take, op.per, out);
        }
        s.take(Number.POSITIVE_INFINITY, 15, out);
        assert.equal(s.size, 0);
        for (let i = 0; i < out.length; i += 3) {
          const circ = out[i] as number;
          const list = got.get(circ) ?? [];
          list.push(Number((out[i + 2] as Buffer).toString()));
          got.set(circ, list);
        }
        for (const [circ, n] of sent)
          assert.deepEqual(
            got.get(circ),
            Array.from({ length: n }, (_, k) => k),
          );
      },
    ),
  );
});

test('largest names the circuit with the most cells waiting; drop forgets its cells and keeps the ring', () => {
  const s = new CellScheduler();
  for (let i = 0; i < 3; i++) s.push(1, 3, Buffer.from(`a${i}`));
  for (let i = 0; i < 5; i++) s.push(2, 3, Buffer.from(`b${i}`));
  s.push(3, 3, Buffer.from('c0'));
  const out: (number | Buffer)[] = [];
  s.take(2, 1, out); // one of circuit 1, one of circuit 2: the ring now points at circuit 3
  assert.deepEqual(s.largest(), { circId: 2, cells: 4 });
  assert.equal(s.queuedOf(2), 4);
  const dropped: string[] = [];
  assert.equal(
    s.drop(2, (b) => dropped.push(b.toString())),
    4,
  );
  assert.deepEqual(dropped, ['b1', 'b2', 'b3', 'b4']);
  assert.equal(s.size, 3);
  assert.equal(s.queuedOf(2), 0);
  assert.equal(s.drop(2), 0);
  out.length = 0;
  s.take(Number.POSITIVE_INFINITY, 1, out);
  // Circuit 3's turn was next, and it still is.
  assert.deepEqual(
    out.filter((_, i) => i % 3 === 0),
    [3, 1, 1],
  );
  assert.equal(s.largest(), null);
});
