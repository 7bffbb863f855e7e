import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { listedRelay } from '../../test/helpers/relay-fixtures.js';
import { randomFraction } from '../crypto/random.js';
import { versionAtLeast } from '../version.js';
import type { ConsensusRelay } from '../wire/directory-docs.js';
import { bandwidthWeights, choosePath, PathError, subnetKey } from './path-selection.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 200);

const relay = listedRelay;
const exitRelay = (n: number, over: Partial<ConsensusRelay> = {}) =>
  relay(n, { exitPolicy: ['accept *:*'], flags: ['Running', 'Exit'], ...over });

/** A deterministic [0, 1) source, so the counting tests below see the same picks every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function rejects(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => err instanceof PathError && err.code === code);
}

describe('subnetKey', () => {
  it('groups IPv4 by /16, IPv6 by /32, and reads IPv4-mapped IPv6 as IPv4', () => {
    assert.equal(subnetKey('192.0.2.1'), subnetKey('192.0.200.9'));
    assert.notEqual(subnetKey('192.0.2.1'), subnetKey('192.1.2.1'));
    assert.equal(subnetKey('2001:db8:1::1'), subnetKey('2001:db8:ffff::2'));
    assert.notEqual(subnetKey('2001:db8::1'), subnetKey('2001:db9::1'));
    assert.equal(subnetKey('::ffff:192.0.2.1'), subnetKey('192.0.7.7'));
    assert.equal(subnetKey('not an address'), null);
  });
});

describe('choosePath', () => {
  it('never puts two relays of one /16, /32 or mutual family on a path (random consensuses)', () => {
    const addr = fc.oneof(
      fc.tuple(fc.nat(3), fc.nat(3), fc.nat(255)).map(([a, b, c]) => `10.${a}.${b}.${c}`),
      fc.tuple(fc.nat(3), fc.nat(0xffff)).map(([a, b]) => `2001:db8:${a}:${b.toString(16)}::1`),
      fc.tuple(fc.nat(3), fc.nat(255)).map(([a, c]) => `::ffff:10.${a}.9.${c}`),
    );
    const arb = fc.record({
      relays: fc.array(fc.record({ address: addr, exit: fc.boolean(), bw: fc.nat(1e9), fam: fc.nat(3) }), {
        minLength: 1,
        maxLength: 14,
      }),
      length: fc.integer({ min: 1, max: 4 }),
      seed: fc.nat(),
    });
    fc.assert(
      fc.property(arb, ({ relays, length, seed }) => {
        const rs = relays.map((r, i) => {
          const base = r.exit ? exitRelay(i + 1) : relay(i + 1);
          return { ...base, address: r.address, bandwidth: r.bw, fam: r.fam };
        });
        // Relays with the same `fam` number declare each other (a mutual family).
        const consensus: ConsensusRelay[] = rs.map(({ fam, ...r }) => ({
          ...r,
          family: rs.filter((o) => o.fam === fam && o.id !== r.id).map((o) => o.id),
        }));
        let path: ConsensusRelay[];
        try {
          path = choosePath(consensus, { length, enforceSubnets: true, random: seeded(seed) });
        } catch (err) {
          assert.ok(err instanceof PathError, String(err));
          return;
        }
        assert.equal(path.length, length);
        assert.ok(path[path.length - 1].flags.includes('Exit'));
        for (let i = 0; i < path.length; i++) {
          for (let j = i + 1; j < path.length; j++) {
            const a = rs.find((r) => r.id === path[i].id);
            const b = rs.find((r) => r.id === path[j].id);
            assert.notEqual(path[i].id, path[j].id);
            assert.notEqual(subnetKey(path[i].address), subnetKey(path[j].address));
            assert.notEqual(a?.fam, b?.fam, 'two relays of one family');
          }
        }
      }),
      { numRuns },
    );
  });

  it('finds a diverse path whenever one exists (small consensuses, exhaustive check)', () => {
    // 4 relays in 3 subnets: 10.1 twice (one of them the only exit), 10.2, 10.3.
    const rs = [
      exitRelay(1, { address: '10.1.0.1' }),
      relay(2, { address: '10.1.0.2' }),
      relay(3, { address: '10.2.0.1' }),
      relay(4, { address: '10.3.0.1' }),
    ];
    for (let seed = 0; seed < 50; seed++) {
      const path = choosePath(rs, { length: 3, random: seeded(seed) });
      assert.deepEqual(path.map((r) => r.nickname).sort(), ['r1', 'r3', 'r4']);
    }
    rejects(() => choosePath(rs.slice(0, 3), { length: 3, random: randomFraction }), 'ALLIUM_PATH_DIVERSITY');
  });

  it('on one host (every relay in one /16) builds paths unless told to enforce subnets', () => {
    const rs = [1, 2, 3, 4]
      .map((n) => (n === 4 ? exitRelay(n) : relay(n)))
      .map((r) => ({ ...r, address: '127.0.0.1' }));
    const path = choosePath(rs, { length: 3, random: randomFraction });
    assert.equal(new Set(path.map((r) => r.id)).size, 3);
    assert.equal(choosePath(rs, { length: 3, random: randomFraction, enforceSubnets: false }).length, 3);
    rejects(
      () => choosePath(rs, { length: 3, random: randomFraction, enforceSubnets: true }),
      'ALLIUM_PATH_DIVERSITY',
    );
  });

  it('keeps a family apart only when both relays declare it', () => {
    const a = exitRelay(1);
    const b = relay(2);
    const c = relay(3);
    const mutual = [{ ...a, family: [b.id] }, { ...b, family: [a.id] }, c];
    for (let seed = 0; seed < 30; seed++) {
      rejects(() => choosePath(mutual, { length: 3, random: seeded(seed) }), 'ALLIUM_PATH_DIVERSITY');
    }
    // A one-sided claim (b says it is a's sibling; a does not agree) changes nothing.
    const oneSided = [a, { ...b, family: [a.id] }, c];
    assert.equal(choosePath(oneSided, { length: 3, random: randomFraction }).length, 3);
  });

  it('clamps a self-reported huge bandwidth to 10x the median', () => {
    const honest = Array.from({ length: 19 }, (_, i) => exitRelay(i + 1, { bandwidth: 1000 }));
    const liar = exitRelay(99, { bandwidth: 1e15 });
    const w = bandwidthWeights([...honest, liar]);
    assert.equal(w.get(liar.id), 10_000);
    const random = seeded(7);
    let liarExits = 0;
    const runs = 2000;
    for (let i = 0; i < runs; i++) {
      if (choosePath([...honest, liar], { length: 1, random })[0].id === liar.id) liarExits++;
    }
    // Its share is 10000 / (10000 + 19 * 1000) = 34%, not ~100%.
    assert.ok(liarExits > runs * 0.2 && liarExits < runs * 0.5, `liar was exit ${liarExits}/${runs} times`);
  });

  it('picks only exits whose policy may allow the target', () => {
    const rs = [
      exitRelay(1, { exitPolicy: ['accept *:443', 'reject *:*'] }),
      exitRelay(2, { exitPolicy: ['accept *:80', 'reject *:*'] }),
      relay(3),
      relay(4),
    ];
    for (let seed = 0; seed < 20; seed++) {
      const path = choosePath(rs, {
        length: 3,
        target: { host: 'example.com', port: 80 },
        random: seeded(seed),
      });
      assert.equal(path[2].nickname, 'r2');
    }
    rejects(
      () => choosePath(rs, { length: 3, random: randomFraction, target: { host: 'example.com', port: 25 } }),
      'ALLIUM_PATH_NO_EXIT',
    );
  });

  it('puts no relay of a release before 0.5.0 (older cell crypto) anywhere on a path, and says so', () => {
    const rs = [
      exitRelay(1, { version: 'allium/0.4.1' }),
      exitRelay(2),
      relay(3, { version: 'allium/0.4.1' }),
      relay(4),
      relay(5),
    ];
    for (let seed = 0; seed < 40; seed++) {
      const path = choosePath(rs, { length: 3, random: seeded(seed) });
      assert.deepEqual(path.map((r) => r.nickname).sort(), ['r2', 'r4', 'r5']);
    }
    assert.throws(
      () => choosePath([rs[0], relay(3), relay(4), relay(5)], { length: 3, random: randomFraction }),
      (e: unknown) =>
        e instanceof PathError && e.code === 'ALLIUM_PATH_NO_EXIT' && /older than 0\.5\.0/.test(e.message),
    );
    assert.throws(
      () =>
        choosePath([rs[1], relay(3, { version: 'allium/0.4.1' }), relay(4)], {
          length: 3,
          random: randomFraction,
        }),
      (e: unknown) =>
        e instanceof PathError &&
        e.code === 'ALLIUM_PATH_TOO_FEW' &&
        /1 more run an older release/.test(e.message),
    );
  });

  it('reads release versions as numbers, and refuses one that does not parse', () => {
    assert.ok(versionAtLeast('allium/0.2.0', [0, 2, 0]));
    assert.ok(versionAtLeast('allium/0.10.0', [0, 2, 0]));
    assert.ok(versionAtLeast('allium/1.0.0-rc1', [0, 2, 0]));
    assert.ok(!versionAtLeast('allium/0.1.9', [0, 2, 0]));
    assert.ok(!versionAtLeast('tor/0.4.9', [0, 2, 0]));
    assert.ok(!versionAtLeast('allium/2', [0, 2, 0]));
  });

  describe('with entry guards', () => {
    const rs = [exitRelay(1), exitRelay(2), relay(3), relay(4), relay(5), relay(6)];
    const g = (n: number) => rs[n - 1].id;

    it('always enters through the first usable guard', () => {
      for (let seed = 0; seed < 40; seed++) {
        const path = choosePath(rs, { length: 3, guards: [g(3), g(4)], random: seeded(seed) });
        assert.equal(path[0].id, g(3));
        assert.equal(new Set(path.map((r) => r.id)).size, 3);
      }
    });

    it('uses the next guard when the first is down, excluded, or shares a subnet with the exit', () => {
      const down = rs.map((r) => (r.id === g(3) ? { ...r, flags: [] } : r));
      assert.equal(choosePath(down, { length: 3, random: randomFraction, guards: [g(3), g(4)] })[0].id, g(4));
      assert.equal(
        choosePath(rs, {
          length: 3,
          random: randomFraction,
          guards: [g(3), g(4)],
          exclude: new Set([g(3)]),
        })[0].id,
        g(4),
      );
      // Guard r3 sits in the only exit's /16: it can never enter that exit's paths.
      const onlyExit = [exitRelay(1, { address: '10.3.5.5' }), ...rs.slice(2)];
      for (let seed = 0; seed < 20; seed++) {
        assert.equal(
          choosePath(onlyExit, { length: 3, guards: [g(3), g(4)], random: seeded(seed) })[0].id,
          g(4),
        );
      }
    });

    it('fails rather than falling back to a random entry when no guard is usable', () => {
      const down = rs.map((r) => (r.id === g(3) || r.id === g(4) ? { ...r, flags: [] } : r));
      rejects(
        () => choosePath(down, { length: 3, random: randomFraction, guards: [g(3), g(4)] }),
        'ALLIUM_PATH_NO_GUARD',
      );
      const onlyExit = [exitRelay(1, { address: '10.3.5.5' }), ...rs.slice(2)];
      rejects(
        () => choosePath(onlyExit, { length: 3, random: randomFraction, guards: [g(3)] }),
        'ALLIUM_PATH_NO_GUARD',
      );
    });
  });
});

describe('choosePath to a relay of the caller (onion service roles, §8)', () => {
  const relays = [1, 2, 3, 4, 5].map((n) => relay(n));
  it('ends at that relay, with no Exit flag needed, entering through a guard, even if excluded', () => {
    for (let i = 0; i < 20; i++) {
      const path = choosePath(relays, {
        length: 3,
        lastHop: relays[3],
        guards: [relays[0].id],
        exclude: new Set([relays[3].id, relays[1].id]),
        random: randomFraction,
      });
      assert.equal(path.length, 3);
      assert.equal(path[2].id, relays[3].id);
      assert.equal(path[0].id, relays[0].id);
      assert.ok(![relays[0].id, relays[1].id, relays[3].id].includes(path[1].id), 'a middle of its own');
    }
  });

  it('takes the next guard when the relay is the first guard', () => {
    const path = choosePath(relays, {
      length: 3,
      lastHop: relays[0],
      guards: [relays[0].id, relays[1].id],
      random: randomFraction,
    });
    assert.deepEqual([path[0].id, path[2].id], [relays[1].id, relays[0].id]);
  });

  it('refuses a relay the consensus does not list running', () => {
    rejects(
      () => choosePath(relays, { length: 3, lastHop: relay(9), random: randomFraction }),
      'ALLIUM_PATH_TOO_FEW',
    );
  });
});
