// `kill -9` during a state save, against a real `allium directory` process: registrations keep the
// directory saving a state file of several MiB; the process is killed while a temporary file is being
// written, three times. Each kill leaves that file behind; each restart removes it and loads the state.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { signDescriptor } from '../../src/core/documents.js';
import { IdentityKey } from '../../src/crypto/keys.js';
import type { SignedEnvelope } from '../../src/wire/directory-docs.js';
import { AlliumProcess } from '../helpers/allium-process.js';
import { makeTestRelay } from '../helpers/relay-fixtures.js';

function bigDescriptor(i: number): SignedEnvelope {
  const identity = IdentityKey.generate();
  const comments = Array.from({ length: 120 }, (_, n) => `# ${'y'.repeat(100)} ${n}`);
  const { descriptor } = makeTestRelay(
    { nickname: `crash${i}`, port: 1 + i, exitPolicy: [...comments, 'reject *:*'] },
    identity,
  );
  return signDescriptor(identity, descriptor);
}

const temps = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('relays.json.tmp-'));

async function startDirectory(dataDir: string): Promise<AlliumProcess> {
  const p = await AlliumProcess.start('directory', [
    'directory',
    '--data-dir',
    dataDir,
    '--port',
    '0',
    '--no-reachability-check',
    '--max-relays-per-local-address',
    '100000',
    '--log-level',
    'info',
  ]);
  assert.ok(p.running, p.log);
  return p;
}

test('kill -9 in the middle of a state save: the temporary file it leaves is removed at the next start', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'allium-crash-'));
  try {
    let left = 0;
    for (let round = 0; round < 3; round++) {
      const dir = await startDirectory(dataDir);
      assert.deepEqual(temps(dataDir), [], 'no temporary file survives a start');
      const listedBefore = (
        (await (await fetch(`${dir.ready.url}/v1/consensus`)).json()) as { body: string }
      ).body.match(/"nickname"/g)?.length;
      // Register until a save is caught in flight (bounded: 600 registrations), then kill -9.
      let stop = false;
      let next = round * 600;
      const poster = async () => {
        const end = (round + 1) * 600;
        while (!stop && next < end) {
          const env = bigDescriptor(next++);
          await fetch(`${dir.ready.url}/v1/relays`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(env),
          }).then(
            (r) => r.arrayBuffer(),
            () => undefined,
          );
        }
      };
      const posters = Array.from({ length: 8 }, poster);
      let caught: string[] = [];
      while (!stop && next < (round + 1) * 600) {
        caught = temps(dataDir);
        if (caught.length > 0 && next > round * 600 + 100) {
          dir.proc.kill('SIGKILL');
          stop = true;
        } else await new Promise((r) => setImmediate(r));
      }
      stop = true;
      await Promise.all(posters);
      await dir.kill('SIGKILL');
      const after = temps(dataDir);
      const sizes = after.map((n) => statSync(join(dataDir, n)).size);
      const state = statSync(join(dataDir, 'relays.json')).size;
      console.log(
        `  round ${round + 1}: listed before ${listedBefore ?? 0}, ${next - round * 600} registrations sent; ` +
          `killed with ${after.length} temporary file(s) of ${sizes.join(', ')} bytes beside a ${state}-byte relays.json`,
      );
      left += after.length;
    }
    assert.ok(left > 0, 'at least one kill caught a save in flight (else the test proves nothing)');
    const dir = await startDirectory(dataDir);
    try {
      assert.deepEqual(temps(dataDir), [], 'the last start removed every leftover');
      const c = (await (await fetch(`${dir.ready.url}/v1/consensus`)).json()) as { body: string };
      console.log(`  after the kills: ${c.body.match(/"nickname"/g)?.length ?? 0} relays loaded`);
    } finally {
      await dir.kill();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
