// Fuzzing support for every decoder of docs/protocol.md: inputs made by mutating valid encodings.
// Random bytes mostly fail at the first length check; a valid message with a few bytes changed gets
// past it and exercises the deep checks, so every target mixes both.
import fc from 'fast-check';

export type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; n: number }
  | { op: 'duplicate'; at: number; n: number }
  | { op: 'append'; bytes: Uint8Array }
  // Length and count fields are where decoders go wrong: write an extreme u16 somewhere.
  | { op: 'u16'; at: number; value: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.nat(255) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    op: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ op: fc.constant('duplicate' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ op: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 32 }) }),
  fc.record({
    op: fc.constant('u16' as const),
    at: fc.nat(),
    value: fc.constantFrom(0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xfffe, 0xffff),
  }),
);

export function applyMutation(input: Buffer, m: Mutation): Buffer {
  const len = input.length;
  const at = len === 0 ? 0 : m.op === 'append' ? 0 : m.at % (len + (m.op === 'insert' ? 1 : 0));
  switch (m.op) {
    case 'flip': {
      if (len === 0) return input;
      const out = Buffer.from(input);
      out[at] ^= 1 << m.bit;
      return out;
    }
    case 'set': {
      if (len === 0) return input;
      const out = Buffer.from(input);
      out[at] = m.value;
      return out;
    }
    case 'truncate':
      return input.subarray(0, at);
    case 'insert':
      return Buffer.concat([input.subarray(0, at), m.bytes, input.subarray(at)]);
    case 'delete':
      return Buffer.concat([input.subarray(0, at), input.subarray(at + m.n)]);
    case 'duplicate':
      return Buffer.concat([input.subarray(0, at + m.n), input.subarray(at)]);
    case 'append':
      return Buffer.concat([input, m.bytes]);
    case 'u16': {
      if (len < 2) return input;
      const out = Buffer.from(input);
      out.writeUInt16BE(m.value, at % (len - 1));
      return out;
    }
  }
}

/** A valid seed with 1-4 mutations applied (sometimes none: the seed itself must decode). */
export function mutated(seeds: fc.Arbitrary<Buffer>): fc.Arbitrary<Buffer> {
  return fc
    .tuple(seeds, fc.array(mutationArb, { minLength: 0, maxLength: 4 }))
    .map(([seed, ms]) => ms.reduce(applyMutation, seed));
}

/** The same for text documents (JSON): mutated as UTF-8 bytes, read back as text. */
export function mutatedText(seeds: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return mutated(seeds.map((s) => Buffer.from(s, 'utf8'))).map((b) => b.toString('utf8'));
}

/** Random bytes of up to maxLength. */
export function randomBytes(maxLength: number): fc.Arbitrary<Buffer> {
  return fc.uint8Array({ maxLength }).map((u) => Buffer.from(u));
}

/**
 * A buffer of exactly `len` bytes with a few random bytes at random places: cheap enough for cell- and
 * frame-sized inputs at 100,000 cases, where filling every byte at random would dominate the run.
 */
export function sparseBytes(len: number): fc.Arbitrary<Buffer> {
  return fc
    .tuple(fc.nat(255), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 16 }))
    .map(([fill, pokes]) => {
      const b = Buffer.alloc(len, fill);
      if (len > 0) for (const [at, v] of pokes) b[at % len] = v;
      return b;
    });
}
