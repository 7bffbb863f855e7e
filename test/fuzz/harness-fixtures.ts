// Targets that misbehave on purpose, so test/fuzz.test.ts can show the harness catches each failure.
import fc from 'fast-check';
import { WireError } from '../../src/wire/errors.js';
import { type FuzzTarget, refusesOnlyWith } from './targets.js';

function decoderThatThrowsTypeError(b: Buffer): number {
  if (b.length > 3 && b[0] === 0x41) throw new WireError('ALLIUM_WIRE_MALFORMED', 'starts with A');
  // The bug: reads past the end without a length check.
  return b.readUInt32BE(1);
}

function decoderThatHangs(b: Buffer): number {
  let i = 0;
  // The bug: a length field of zero never advances.
  while (b.length > 2 && b[0] === 0) i = (i + b[1]) % b.length;
  return i;
}

export const TARGETS: FuzzTarget[] = [
  {
    name: 'throws a foreign error',
    arbitrary: () => fc.uint8Array({ maxLength: 8 }).map((u) => Buffer.from(u)),
    check: (input) => void refusesOnlyWith([WireError], () => decoderThatThrowsTypeError(input as Buffer)),
  },
  {
    name: 'hangs',
    arbitrary: () => fc.uint8Array({ minLength: 3, maxLength: 8 }).map((u) => Buffer.from(u)),
    check: (input) => void decoderThatHangs(input as Buffer),
  },
];
