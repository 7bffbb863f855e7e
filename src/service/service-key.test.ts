import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadOrCreateServiceKey, SERVICE_KEY_FILE } from './service-key.js';

const root = mkdtempSync(join(tmpdir(), 'allium-service-key-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `d${n++}`);

async function code(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(
    () => undefined,
    (err: { code?: string }) => err.code,
  );
}

describe('the service key file', () => {
  it('is made on first start as 32 bytes, mode 0600, and read back after (the same key, the same address)', async () => {
    const dir = fresh();
    const first = await loadOrCreateServiceKey(dir);
    const path = join(dir, SERVICE_KEY_FILE);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.deepEqual(readFileSync(path), first.seed());
    const again = await loadOrCreateServiceKey(dir);
    assert.deepEqual(again.publicKey, first.publicKey);
  });

  it('is refused, not replaced, when it has the wrong size or others may read it', async () => {
    const dir = fresh();
    const key = await loadOrCreateServiceKey(dir);
    const path = join(dir, SERVICE_KEY_FILE);
    chmodSync(path, 0o640);
    assert.equal(await code(loadOrCreateServiceKey(dir)), 'ALLIUM_SERVICE_KEY');
    chmodSync(path, 0o600);
    writeFileSync(path, Buffer.concat([key.seed(), Buffer.from('\n')]));
    assert.equal(await code(loadOrCreateServiceKey(dir)), 'ALLIUM_SERVICE_KEY');
    assert.equal(readFileSync(path).length, 33, 'left as it was');
    writeFileSync(path, Buffer.alloc(0));
    assert.equal(await code(loadOrCreateServiceKey(dir)), 'ALLIUM_SERVICE_KEY');
  });
});
