import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { RELAY_DATA_MAX } from './constants.js';
import { WireError } from './errors.js';
import { ONION_DESCRIPTOR_LEN } from './onion-descriptor.js';
import {
  DescriptorStoreStatus,
  decodeDescriptorFetch,
  decodeDescriptorFetched,
  decodeDescriptorStore,
  decodeDescriptorStored,
  decodeEmpty,
  decodeEstablishIntro,
  decodeEstablishRendezvous,
  decodeIntroduce,
  decodeIntroduceAck,
  decodeIntroducePlaintext,
  decodeRendezvous1,
  decodeRendezvous2,
  encodeDescriptorFetch,
  encodeDescriptorFetched,
  encodeDescriptorStore,
  encodeDescriptorStored,
  encodeEstablishIntro,
  encodeEstablishRendezvous,
  encodeIntroduce,
  encodeIntroduceAck,
  encodeIntroducePlaintext,
  encodeRendezvous1,
  encodeRendezvous2,
  establishIntroAuthInput,
  INTRO_PLAINTEXT_LEN,
  IntroduceAckStatus,
  introduceMacInput,
} from './onion-messages.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 200);
const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((u) => Buffer.from(u));
const isWire = (e: unknown) => e instanceof WireError;

const establishIntro = fc.record({
  authKey: bytes(32),
  rate: fc.integer({ min: 0, max: 65535 }),
  burst: fc.integer({ min: 0, max: 65535 }),
  handshakeAuth: bytes(32),
  signature: bytes(64),
});
const introduce = fc.record({
  authKey: bytes(32),
  clientKey: bytes(32),
  encrypted: bytes(INTRO_PLAINTEXT_LEN),
  mac: bytes(32),
});
const handshake = fc.record({ serviceKey: bytes(32), auth: bytes(32) });

/** Every decoder of §8.5, by name, for the garbage property. */
const DECODERS: [string, (d: Buffer) => unknown][] = [
  ['ESTABLISH_INTRO', decodeEstablishIntro],
  ['INTRODUCE', decodeIntroduce],
  ['INTRODUCE plaintext', decodeIntroducePlaintext],
  ['INTRODUCE_ACK', decodeIntroduceAck],
  ['ESTABLISH_RENDEZVOUS', decodeEstablishRendezvous],
  ['RENDEZVOUS1', decodeRendezvous1],
  ['RENDEZVOUS2', decodeRendezvous2],
  ['INTRO_ESTABLISHED', (d) => decodeEmpty(d, 'INTRO_ESTABLISHED')],
  ['HS_DESC_STORE', decodeDescriptorStore],
  ['HS_DESC_STORED', decodeDescriptorStored],
  ['HS_DESC_FETCH', decodeDescriptorFetch],
  ['HS_DESC_FETCHED', decodeDescriptorFetched],
];

describe('onion service relay messages (§8.5)', () => {
  it('round-trip, each in one relay message', () => {
    fc.assert(
      fc.property(establishIntro, introduce, handshake, bytes(32), (ei, intro, h, cookie) => {
        const e = encodeEstablishIntro(ei);
        assert.equal(e.length, 133);
        assert.deepEqual(decodeEstablishIntro(e), { ...ei });
        assert.deepEqual(e.subarray(0, 37), establishIntroAuthInput(ei));
        const i = encodeIntroduce(intro);
        assert.equal(i.length, 225);
        assert.deepEqual(decodeIntroduce(i), { ...intro });
        assert.deepEqual(i.subarray(0, 193), introduceMacInput(intro));
        assert.deepEqual(decodeEstablishRendezvous(encodeEstablishRendezvous(cookie)), { cookie });
        assert.deepEqual(decodeRendezvous1(encodeRendezvous1(cookie, h)), { cookie, ...h });
        assert.deepEqual(decodeRendezvous2(encodeRendezvous2(h)), { ...h });
        const plain = { cookie, rendezvousId: h.auth };
        assert.deepEqual(decodeIntroducePlaintext(encodeIntroducePlaintext(plain)), plain);
        assert.deepEqual(decodeDescriptorFetch(encodeDescriptorFetch(cookie)), { blindedKey: cookie });
      }),
      { numRuns },
    );
    for (const s of Object.values(IntroduceAckStatus))
      assert.equal(decodeIntroduceAck(encodeIntroduceAck(s)), s);
    for (const s of Object.values(DescriptorStoreStatus)) {
      assert.equal(decodeDescriptorStored(encodeDescriptorStored(s)), s);
    }
    const descriptor = Buffer.alloc(ONION_DESCRIPTOR_LEN, 7);
    assert.deepEqual(decodeDescriptorStore(encodeDescriptorStore(descriptor)), descriptor);
    assert.deepEqual(decodeDescriptorFetched(encodeDescriptorFetched(descriptor)), descriptor);
    assert.equal(decodeDescriptorFetched(encodeDescriptorFetched(null)), null);
    assert.ok(encodeDescriptorFetched(descriptor).length <= RELAY_DATA_MAX);
  });

  it('refuse a wrong version, length or status with WireError', () => {
    const ei = encodeEstablishIntro({
      authKey: Buffer.alloc(32),
      rate: 1,
      burst: 1,
      handshakeAuth: Buffer.alloc(32),
      signature: Buffer.alloc(64),
    });
    const wrongVersion = Buffer.from(ei);
    wrongVersion[0] = 2;
    for (const [bad, decode] of [
      [wrongVersion, decodeEstablishIntro],
      [ei.subarray(1), decodeEstablishIntro],
      [Buffer.concat([ei, Buffer.alloc(1)]), decodeEstablishIntro],
      [Buffer.from([4]), decodeIntroduceAck],
      [Buffer.from([5]), decodeDescriptorStored],
      [Buffer.from([2]), decodeDescriptorFetched],
      [Buffer.from([1, 0]), decodeDescriptorFetched],
      [Buffer.alloc(31), decodeEstablishRendezvous],
      [Buffer.alloc(1), (d: Buffer) => decodeEmpty(d, 'RENDEZVOUS_ESTABLISHED')],
    ] as [Buffer, (d: Buffer) => unknown][]) {
      assert.throws(() => decode(bad), isWire, bad.toString('hex'));
    }
    assert.throws(
      () => encodeEstablishIntro({ ...decodeEstablishIntro(ei), rate: 65536 }),
      (e: unknown) => e instanceof WireError && e.code === 'ALLIUM_WIRE_TOO_LARGE',
    );
  });

  it('throw nothing but WireError on garbage, and on valid messages with bytes changed', () => {
    const valid = [
      encodeEstablishIntro({
        authKey: Buffer.alloc(32, 1),
        rate: 25,
        burst: 200,
        handshakeAuth: Buffer.alloc(32, 2),
        signature: Buffer.alloc(64, 3),
      }),
      encodeIntroduce({
        authKey: Buffer.alloc(32, 1),
        clientKey: Buffer.alloc(32, 2),
        encrypted: Buffer.alloc(INTRO_PLAINTEXT_LEN, 3),
        mac: Buffer.alloc(32, 4),
      }),
      encodeDescriptorFetched(Buffer.alloc(ONION_DESCRIPTOR_LEN, 5)),
    ];
    const garbage = fc.oneof(
      fc.uint8Array({ maxLength: 1300 }).map((u) => Buffer.from(u)),
      fc
        .tuple(fc.constantFrom(...valid), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat({ max: 3 }))
        .map(([v, at, value, cut]) => {
          const b = Buffer.from(v);
          b[at % b.length] = value;
          return b.subarray(0, b.length - cut);
        }),
    );
    fc.assert(
      fc.property(garbage, (d) => {
        for (const [name, decode] of DECODERS) {
          try {
            decode(d);
          } catch (e) {
            assert.ok(isWire(e), `${name}: ${String(e)}`);
          }
        }
      }),
      { numRuns: numRuns * 2 },
    );
  });
});
