import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type CircuitHopCrypto,
  circuitHopCrypto,
  FORWARD_MARKER_LEN,
  wrapForward,
} from '../crypto/forward-onion.js';
import { IdentityKey, randomBytes, X25519Key } from '../crypto/keys.js';
import { linkBoundHop } from '../crypto/link-bound-hop.js';
import { ntorServerRespond } from '../crypto/ntor.js';
import { decodeCreate, encodeCreated } from '../wire/cell-bodies.js';
import { CellCommand, DestroyReason, HandshakeType, RelayCommand } from '../wire/constants.js';
import type { ConsensusRelay } from '../wire/directory-docs.js';
import { decodeRelayMessage, encodeRelayMessage } from '../wire/relay-cell.js';
import { decodeExtend } from '../wire/relay-messages.js';
import { type BuildCell, type BuildStep, CIRCUIT_STEP_TIMEOUT_MS, CircuitBuild } from './circuit-build.js';

interface FakeRelay {
  entry: ConsensusRelay;
  relayId: Buffer;
  onionKey: X25519Key;
}

function fakeRelay(nickname: string): FakeRelay {
  const identity = IdentityKey.generate();
  const onionKey = X25519Key.generate();
  return {
    relayId: identity.id,
    onionKey,
    entry: {
      nickname,
      id: identity.id.toString('hex'),
      identityKey: identity.publicKey.toString('base64'),
      onionKey: onionKey.publicKey.toString('base64'),
      address: '127.0.0.1',
      port: 9000,
      exitPolicy: [],
      bandwidth: 1,
      version: '0.5.0',
      published: 0,
      flags: ['Running'],
    },
  };
}

const relays = [fakeRelay('entry'), fakeRelay('middle'), fakeRelay('exit')];
const path = relays.map((r) => r.entry);
const linkSecret = randomBytes(32);

/**
 * The relays' side of one circuit, as a relay runs it: answers CREATE, opens each forward cell hop by
 * hop, and answers an EXTEND at the hop it was for. Returns the handshake data of the answer.
 */
class FakeNetwork {
  readonly hops: CircuitHopCrypto[] = [];
  /** The hop each EXTEND was opened at. */
  readonly extendsAt: number[] = [];

  answer(cell: BuildCell): { created?: Buffer; extended?: Buffer } {
    if (cell.command === CellCommand.CREATE) {
      const { htype, hdata } = decodeCreate(cell.body);
      if (htype === HandshakeType.LINK_BOUND) {
        const { keys, confirm } = linkBoundHop(linkSecret, hdata);
        this.hops.push(circuitHopCrypto(keys, { firstHop: true }));
        return { created: encodeCreated(confirm) };
      }
      const { reply, keys } = ntorServerRespond(hdata, relays[0]);
      this.hops.push(circuitHopCrypto(keys, { firstHop: true }));
      return { created: encodeCreated(reply) };
    }
    assert.equal(cell.command, CellCommand.RELAY_EARLY, 'an EXTEND goes in RELAY_EARLY');
    let body = cell.body;
    for (let i = 0; i < this.hops.length; i++) {
      const opened = this.hops[i].forward.open(body, cell.command);
      if (opened.kind === 'tampered') assert.fail(`hop ${i} found the EXTEND tampered`);
      if (opened.kind === 'forward') {
        body = opened.body;
        continue;
      }
      const msg = decodeRelayMessage(opened.payload, FORWARD_MARKER_LEN);
      assert.equal(msg.command, RelayCommand.EXTEND);
      const req = decodeExtend(msg.data);
      const target = relays.find((r) => r.relayId.equals(req.relayId))!;
      this.extendsAt.push(i);
      const { reply, keys } = ntorServerRespond(req.hdata, target);
      this.hops.push(circuitHopCrypto(keys, { firstHop: false }));
      return { extended: reply };
    }
    assert.fail('no hop opened the EXTEND');
  }
}

function sent(step: BuildStep): BuildCell[] {
  assert.equal(step.kind, 'send', step.kind === 'failed' ? step.why : step.kind);
  return (step as { cells: BuildCell[] }).cells;
}

function failed(step: BuildStep): { reason: number; why: string; code: string | null } {
  assert.equal(step.kind, 'failed', `expected a failure, got ${step.kind}`);
  return step as { reason: number; why: string; code: string | null };
}

/** Answers every cell the build sends until it stops sending; returns its last step. */
function runToEnd(build: CircuitBuild, network: FakeNetwork, first: BuildStep): BuildStep {
  let step = first;
  while (step.kind === 'send') {
    let next: BuildStep = { kind: 'waiting' };
    for (const cell of step.cells) {
      const a = network.answer(cell);
      const s = a.created ? build.created(a.created) : build.extended(a.extended!);
      if (s.kind !== 'waiting') next = s;
    }
    step = next;
  }
  return step;
}

describe('CircuitBuild', () => {
  it('telescopes with ntor: CREATE to the entry, then an EXTEND answered by the last hop each time', () => {
    let t = 0;
    const build = new CircuitBuild(path, { clock: () => (t += 5) });
    const network = new FakeNetwork();
    const first = build.start();
    assert.deepEqual(
      sent(first).map((c) => c.command),
      [CellCommand.CREATE],
    );
    assert.equal(build.waitingFor, path[0]);
    assert.equal(runToEnd(build, network, first).kind, 'built');
    assert.deepEqual(network.extendsAt, [0, 1], 'each EXTEND was opened by the last hop so far');
    assert.deepEqual(
      build.hops.map((h) => h.relay.nickname),
      ['entry', 'middle', 'exit'],
    );
    assert.equal(build.confirmedHops, 3);
    assert.equal(build.stepsMs.length, 3);
    assert.ok(build.stepsMs.every((ms) => ms > 0));
    // Both ends hold the same keys: a cell the client wraps for the exit opens there.
    const { body } = wrapForward(
      build.hops.map((h) => h.crypto.forward),
      encodeRelayMessage(RelayCommand.DATA, 1, Buffer.from('after the build')),
    );
    let at = body;
    for (let i = 0; i < 2; i++) {
      const opened = network.hops[i].forward.open(at, CellCommand.RELAY);
      assert.equal(opened.kind, 'forward');
      at = (opened as { body: Buffer }).body;
    }
    const mine = network.hops[2].forward.open(at, CellCommand.RELAY);
    assert.equal(mine.kind, 'mine');
    const msg = decodeRelayMessage((mine as { payload: Buffer }).payload, FORWARD_MARKER_LEN);
    assert.equal(msg.data.toString(), 'after the build');
  });

  it('with the link-bound entry, the first EXTEND goes right behind the CREATE', () => {
    const build = new CircuitBuild(path, { linkSecret });
    const network = new FakeNetwork();
    const first = build.start();
    const cells = sent(first);
    assert.deepEqual(
      cells.map((c) => c.command),
      [CellCommand.CREATE, CellCommand.RELAY_EARLY],
    );
    assert.equal(decodeCreate(cells[0].body).htype, HandshakeType.LINK_BOUND);
    assert.equal(build.hops.length, 1, 'the entry is a hop from the start');
    assert.equal(build.confirmedHops, 0);
    assert.equal(build.awaitingEntryConfirmation, true);
    const created = network.answer(cells[0]).created!;
    const extended = network.answer(cells[1]).extended!;
    assert.equal(build.created(created).kind, 'waiting');
    assert.equal(build.awaitingEntryConfirmation, false);
    assert.equal(build.confirmedHops, 1);
    const last = runToEnd(build, network, build.extended(extended));
    assert.equal(last.kind, 'built');
    assert.equal(build.confirmedHops, 3);
  });

  it('a one-relay path never uses the link-bound entry (nothing would follow its CREATE)', () => {
    const build = new CircuitBuild([path[0]], { linkSecret });
    const cells = sent(build.start());
    assert.equal(decodeCreate(cells[0].body).htype, HandshakeType.NTOR_X25519_SHA256);
  });

  describe('hostile or broken answers', () => {
    it('a link-bound entry that answers with the wrong confirmation fails the build', () => {
      const build = new CircuitBuild(path, { linkSecret });
      const network = new FakeNetwork();
      const created = Buffer.from(network.answer(sent(build.start())[0]).created!);
      created[5] ^= 1;
      const f = failed(build.created(created));
      assert.equal(f.reason, DestroyReason.PROTOCOL);
      assert.match(f.why, /did not confirm the link-bound first hop/);
      assert.equal(f.code, null);
    });

    it('a link-bound entry that never confirms fails the build with a protocol error at the end', () => {
      const build = new CircuitBuild(path, { linkSecret });
      const network = new FakeNetwork();
      const cells = sent(build.start());
      network.answer(cells[0]); // the CREATED is lost
      const f = failed(runToEnd(build, network, build.extended(network.answer(cells[1]).extended!)));
      assert.equal(f.code, 'ALLIUM_CIRCUIT_PROTOCOL');
      assert.match(f.why, /entry never confirmed the first hop/);
    });

    it('a CREATED answered twice, or after the first hop, is a protocol error', () => {
      const build = new CircuitBuild(path);
      const network = new FakeNetwork();
      const created = network.answer(sent(build.start())[0]).created!;
      assert.equal(build.created(created).kind, 'send');
      assert.match(failed(build.created(created)).why, /CREATED after the first hop/);
    });

    it('an answer after the build is complete is a protocol error', () => {
      const build = new CircuitBuild(path);
      const network = new FakeNetwork();
      assert.equal(runToEnd(build, network, build.start()).kind, 'built');
      assert.match(failed(build.extended(randomBytes(64))).why, /unexpected CREATED\/EXTENDED/);
    });

    it('a truncated CREATED, or a CREATED whose AUTH is wrong, fails the build (it never hangs)', () => {
      const network = new FakeNetwork();
      const a = new CircuitBuild(path);
      const created = network.answer(sent(a.start())[0]).created!;
      assert.equal(failed(a.created(created.subarray(0, 10))).reason, DestroyReason.PROTOCOL);
      const b = new CircuitBuild(path);
      const forged = Buffer.from(new FakeNetwork().answer(sent(b.start())[0]).created!);
      forged[forged.length - 1] ^= 1;
      const f = failed(b.created(forged));
      assert.equal(f.reason, DestroyReason.PROTOCOL);
      assert.match(f.why, /^protocol error: /);
    });

    it('the step timer names the relay that did not answer; after the build it changes nothing', () => {
      const build = new CircuitBuild(path);
      const network = new FakeNetwork();
      const extend = sent(build.created(network.answer(sent(build.start())[0]).created!));
      assert.equal(extend[0].command, CellCommand.RELAY_EARLY);
      const f = failed(build.timedOut());
      assert.equal(f.reason, DestroyReason.TIMEOUT);
      assert.equal(f.why, `no answer from middle within ${CIRCUIT_STEP_TIMEOUT_MS} ms`);
      assert.equal(build.created(randomBytes(10)).kind, 'waiting', 'a failed build takes no more input');
      const done = new CircuitBuild(path);
      runToEnd(done, new FakeNetwork(), done.start());
      assert.equal(done.timedOut().kind, 'waiting');
    });

    it('start() runs once', () => {
      const build = new CircuitBuild(path);
      build.start();
      assert.match(failed(build.start()).why, /started twice/);
    });
  });
});
