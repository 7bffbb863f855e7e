import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CellCommand, RelayCommand } from '../wire/constants.js';
import { decodeRelayMessage, encodeRelayMessage } from '../wire/relay-cell.js';
import { isOrigin } from './backward-layer.js';
import { endToEndLayers } from './end-to-end-layer.js';
import {
  type CircuitHopCrypto,
  circuitHopCrypto,
  FORWARD_MARKER_LEN,
  forwardMessageCapacity,
  wrapForward,
} from './forward-onion.js';
import type { EndToEndKeys } from './hs-ntor.js';
import { randomBytes } from './keys.js';
import type { HopKeys } from './ntor.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 30);
const hopKeys = (): HopKeys => ({
  kf: randomBytes(32),
  kb: randomBytes(32),
  mf: randomBytes(32),
  mb: randomBytes(32),
  kt: randomBytes(32),
});

/** A 3-hop circuit to the rendezvous point as its origin and its relays each hold it. */
function circuit(): { origin: CircuitHopCrypto[]; relays: CircuitHopCrypto[] } {
  const keys = [hopKeys(), hopKeys(), hopKeys()];
  const at = (i: number) => ({ firstHop: i === 0 });
  return {
    origin: keys.map((k, i) => circuitHopCrypto(k, at(i))),
    relays: keys.map((k, i) => circuitHopCrypto(k, at(i))),
  };
}

/**
 * One cell from one end to the other as §8.7 says: wrapped for the hop past the rendezvous point,
 * opened by each relay of the sender's circuit, passed by the rendezvous point into the other
 * circuit under its backward layer, layered by that circuit's relays, peeled by the receiver.
 */
function carry(
  sender: { circuit: ReturnType<typeof circuit>; send: CircuitHopCrypto['forward'] },
  receiver: { circuit: ReturnType<typeof circuit>; receive: CircuitHopCrypto['forward'] },
  message: Buffer,
  tamper?: { at: 'sender-middle' | 'receiver-middle'; byte: number },
): Buffer | 'tampered' | 'no-sender' {
  let { body } = wrapForward([...sender.circuit.origin.map((h) => h.forward), sender.send], message);
  for (let i = 0; i < 3; i++) {
    if (tamper?.at === 'sender-middle' && i === 2)
      body = Buffer.from(body).fill(body[tamper.byte] ^ 1, tamper.byte, tamper.byte + 1);
    const opened = sender.circuit.relays[i].forward.open(body, CellCommand.RELAY);
    if (opened.kind === 'tampered') return 'tampered';
    assert.equal(opened.kind, 'forward', `hop ${i} must not find the cell its own`);
    if (opened.kind === 'forward') body = opened.body;
  }
  for (let i = 2; i >= 0; i--) {
    body = receiver.circuit.relays[i].backward.add(body);
    if (tamper?.at === 'receiver-middle' && i === 1) body[tamper.byte] ^= 1;
  }
  for (let i = 0; i < 3; i++) {
    body = receiver.circuit.origin[i].backward.peel(body);
    if (isOrigin(body)) return 'no-sender';
  }
  const mine = receiver.receive.open(body, CellCommand.RELAY);
  if (mine.kind !== 'mine') return 'tampered';
  return mine.payload.subarray(FORWARD_MARKER_LEN);
}

describe('the end-to-end layer (§8.7)', () => {
  const keys: EndToEndKeys = {
    kf: randomBytes(32),
    kb: randomBytes(32),
    mf: randomBytes(32),
    mb: randomBytes(32),
  };

  it('carries cells both ways through two circuits joined at the rendezvous point, in order', () => {
    const clientCircuit = circuit();
    const serviceCircuit = circuit();
    const client = endToEndLayers(keys, 'client');
    const service = endToEndLayers(keys, 'service');
    const capacity = forwardMessageCapacity(3);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: capacity - 5 }), fc.boolean(), (data, toService) => {
        const message = encodeRelayMessage(RelayCommand.DATA, 1, Buffer.from(data));
        const out = toService
          ? carry(
              { circuit: clientCircuit, send: client.send },
              { circuit: serviceCircuit, receive: service.receive },
              message,
            )
          : carry(
              { circuit: serviceCircuit, send: service.send },
              { circuit: clientCircuit, receive: client.receive },
              message,
            );
        assert.ok(Buffer.isBuffer(out));
        assert.deepEqual(decodeRelayMessage(out, 0).data, Buffer.from(data));
      }),
      { numRuns },
    );
  });

  it('is caught when a relay of either circuit changes a cell', () => {
    for (const at of ['sender-middle', 'receiver-middle'] as const) {
      for (const byte of [0, 20, 4000]) {
        const out = carry(
          { circuit: circuit(), send: endToEndLayers(keys, 'client').send },
          { circuit: circuit(), receive: endToEndLayers(keys, 'service').receive },
          encodeRelayMessage(RelayCommand.DATA, 1, Buffer.from('x')),
          { at, byte },
        );
        assert.ok(!Buffer.isBuffer(out), `${at} ${byte}`);
      }
    }
  });

  it('gives a relay that holds every relay key nothing to read', () => {
    // The rendezvous point opens its layer and finds a cell for a hop past it, not a relay message.
    const c = circuit();
    const message = encodeRelayMessage(RelayCommand.DATA, 1, Buffer.from('secret words'));
    let { body } = wrapForward(
      [...c.origin.map((h) => h.forward), endToEndLayers(keys, 'client').send],
      message,
    );
    for (const hop of c.relays) {
      const opened = hop.forward.open(body, CellCommand.RELAY);
      assert.equal(opened.kind, 'forward');
      if (opened.kind === 'forward') body = opened.body;
    }
    assert.equal(body.indexOf('secret words'), -1);
  });
});
