import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { humanBytes, progressStream } from './progress.js';

function sink(isTTY: boolean): Writable & { isTTY: boolean; text: string } {
  const w = new Writable({
    write(chunk, _e, cb) {
      w.text += chunk.toString();
      cb();
    },
  }) as Writable & {
    isTTY: boolean;
    text: string;
    columns: number;
    cursorTo(): void;
    clearLine(): void;
    moveCursor(): void;
  };
  w.text = '';
  w.isTTY = isTTY;
  w.columns = 120;
  w.cursorTo = () => {};
  w.clearLine = () => {};
  w.moveCursor = () => {};
  return w;
}

async function pass(stream: ReturnType<typeof sink>, force?: boolean): Promise<Buffer> {
  const data = Buffer.alloc(3 * 1024 * 1024, 7);
  const parts: Buffer[] = [];
  await pipeline(
    Readable.from([data.subarray(0, 1 << 20), data.subarray(1 << 20)]),
    progressStream({ total: data.length, label: 'example.org', stream, force }),
    new Writable({
      write(c, _e, cb) {
        parts.push(c);
        cb();
      },
    }),
  );
  return Buffer.concat(parts);
}

test('on a terminal the bar shows bytes, total, rate and time left; the data passes unchanged', async () => {
  const tty = sink(true);
  const got = await pass(tty);
  assert.equal(got.length, 3 * 1024 * 1024);
  assert.match(tty.text, /example\.org/);
  assert.match(tty.text, /3\.0 MiB \/ 3\.0 MiB/);
  assert.match(tty.text, /100%/);
  assert.match(tty.text, /\/s/);
  assert.match(tty.text, /s left/);
});

test('piped, nothing is written unless forced', async () => {
  const pipe = sink(false);
  await pass(pipe);
  assert.equal(pipe.text, '');
  const never = sink(true);
  await pass(never, false);
  assert.equal(never.text, '');
});

test('sizes are human-readable', () => {
  assert.equal(humanBytes(512), '512 B');
  assert.equal(humanBytes(10 * 1024 * 1024), '10.0 MiB');
});
