import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeTestRelay } from '../../test/helpers/relay-fixtures.js';
import { DocumentError, signDescriptor, signWithdraw } from '../core/documents.js';
import { DirectoryClient, DirectoryClientError } from '../net/directory-client.js';
import type { SignedEnvelope } from '../wire/directory-docs.js';
import { Directory, type DirectoryOptions } from './directory.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'allium-dir-test-'));
  dirs.push(d);
  return d;
}
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function startDir(over: Partial<DirectoryOptions> = {}): Promise<Directory> {
  // The relays here are signed descriptors with nobody behind them: no connect-back check unless a test sets one.
  return Directory.start({ dataDir: over.dataDir ?? (await tempDir()), reachabilityCheck: false, ...over });
}

function clientFor(d: Directory): DirectoryClient {
  return new DirectoryClient({ url: d.url, directoryKey: d.publicKey, timeoutMs: 5000 });
}

async function post(url: string, body: string | Buffer, contentType = 'application/json'): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': contentType }, body });
}

async function errorOf(res: Response): Promise<{ code: string; message: string }> {
  const j = (await res.json()) as { error: { code: string; message: string } };
  assert.equal(typeof j.error.code, 'string');
  assert.equal(typeof j.error.message, 'string');
  return j.error;
}

async function rejectsWith(p: Promise<unknown>, code: string, remoteCode?: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.equal((err as { code?: string }).code, code, (err as Error).message);
    if (remoteCode) assert.equal((err as DirectoryClientError).remoteCode, remoteCode);
    return true;
  });
}

/** Sends raw bytes and collects whatever comes back until the server closes (or 3 s pass). */
function rawExchange(url: string, bytes: Buffer): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('server neither answered nor closed the connection'));
    }, 3000);
    sock.on('connect', () => sock.write(bytes));
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
}

describe('Directory over HTTP', () => {
  let dir: Directory;
  let client: DirectoryClient;
  before(async () => {
    dir = await startDir();
    client = clientFor(dir);
  });
  after(async () => {
    await dir.stop();
  });

  it('serves its key and whoami', async () => {
    assert.match(dir.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(dir.publicKey.length, 32);
    assert.deepEqual(await client.publicKey(), dir.publicKey);
    assert.equal(await client.whoami(), '127.0.0.1');
  });

  it('registers a relay, looks it up, and lists it in a consensus the client verifies', async () => {
    const exit = makeTestRelay({ nickname: 'exit1' });
    const middle = makeTestRelay({ nickname: 'middle1', exitPolicy: ['reject *:*'], port: 9002 });
    const res = await post(
      `${dir.url}/v1/relays`,
      JSON.stringify(signDescriptor(exit.identity, exit.descriptor)),
    );
    assert.equal(res.status, 201);
    assert.deepEqual(await res.json(), { id: exit.descriptor.id, listed: true });
    await client.register(signDescriptor(middle.identity, middle.descriptor));

    const info = await client.relay(exit.descriptor.id);
    assert.deepEqual(info, {
      id: exit.descriptor.id,
      nickname: 'exit1',
      address: '127.0.0.1',
      port: 9001,
      identityKey: exit.descriptor.identityKey,
      onionKey: exit.descriptor.onionKey,
    });

    const c = await client.consensus();
    assert.equal(c.network, 'allium');
    assert.equal((c as { directoryKey?: string }).directoryKey, dir.publicKey.toString('base64'));
    assert.ok(c.validAfter <= Date.now() && c.freshUntil > Date.now() && c.validUntil > c.freshUntil);
    const byId = new Map(c.relays.map((r) => [r.id, r]));
    assert.deepEqual(byId.get(exit.descriptor.id)?.flags, ['Running', 'Exit']);
    assert.deepEqual(byId.get(middle.descriptor.id)?.flags, ['Running']);
    assert.equal(byId.get(exit.descriptor.id)?.onionKey, exit.descriptor.onionKey);

    // Unchanged set: the same pre-serialised consensus; a new relay: a higher serial.
    const again = await client.consensus({ minSerial: c.serial });
    assert.equal(again.serial, c.serial);
    const third = makeTestRelay({ nickname: 'third' });
    await client.register(signDescriptor(third.identity, third.descriptor));
    const next = await client.consensus({ minSerial: c.serial });
    assert.ok(next.serial > c.serial);
    assert.ok(next.relays.some((r) => r.id === third.descriptor.id));
  });

  it('refuses a bad signature with 400 and the code', async () => {
    const r = makeTestRelay();
    const env = signDescriptor(r.identity, r.descriptor);
    const sig = Buffer.from(env.signature, 'base64');
    sig[0] ^= 0xff;
    const bad = { ...env, signature: sig.toString('base64') };
    const res = await post(`${dir.url}/v1/relays`, JSON.stringify(bad));
    assert.equal(res.status, 400);
    assert.equal((await errorOf(res)).code, 'ALLIUM_DESCRIPTOR_SIGNATURE');
    await rejectsWith(client.register(bad), 'ALLIUM_DIRECTORY_REJECTED', 'ALLIUM_DESCRIPTOR_SIGNATURE');
    await rejectsWith(client.relay(r.descriptor.id), 'ALLIUM_DIRECTORY_NOT_FOUND');
  });

  it('refuses an id that is not the hash of the identity key', async () => {
    const r = makeTestRelay();
    const other = makeTestRelay();
    const body = JSON.stringify({ ...r.descriptor, id: other.descriptor.id });
    const env = {
      body,
      signature: r.identity.sign('allium-descriptor-v1\n', Buffer.from(body)).toString('base64'),
    };
    const res = await post(`${dir.url}/v1/relays`, JSON.stringify(env));
    assert.equal(res.status, 400);
    const e = await errorOf(res);
    assert.equal(e.code, 'ALLIUM_DESCRIPTOR_INVALID');
    assert.match(e.message, /id/);
  });

  it('refuses a relay of a release before 0.5.0 (older cell crypto), naming both releases', async () => {
    const r = makeTestRelay({ version: 'allium/0.4.1' });
    const res = await post(`${dir.url}/v1/relays`, JSON.stringify(signDescriptor(r.identity, r.descriptor)));
    assert.equal(res.status, 400);
    const e = await errorOf(res);
    assert.equal(e.code, 'ALLIUM_RELAY_VERSION');
    assert.match(e.message, /0\.5\.0 or later.*allium\/0\.4\.1/);
    await rejectsWith(client.relay(r.descriptor.id), 'ALLIUM_DIRECTORY_NOT_FOUND');
  });

  it('refuses a descriptor published too far from now', async () => {
    const r = makeTestRelay({ published: Date.now() - 11 * 60_000 });
    await rejectsWith(
      client.register(signDescriptor(r.identity, r.descriptor)),
      'ALLIUM_DIRECTORY_REJECTED',
      'ALLIUM_DESCRIPTOR_CLOCK',
    );
  });

  it('replaces the record when a relay re-registers, and refuses an older one', async () => {
    const r = makeTestRelay({ nickname: 'mover', published: Date.now() - 1000 });
    await client.register(signDescriptor(r.identity, r.descriptor));
    const moved = { ...r.descriptor, port: 9555, published: Date.now() };
    await client.register(signDescriptor(r.identity, moved));
    assert.equal((await client.relay(r.descriptor.id)).port, 9555);
    const c = await client.consensus();
    assert.equal(c.relays.filter((x) => x.id === r.descriptor.id).length, 1);
    await rejectsWith(
      client.register(signDescriptor(r.identity, r.descriptor)),
      'ALLIUM_DIRECTORY_REJECTED',
      'ALLIUM_DESCRIPTOR_OUTDATED',
    );
  });

  it('withdraws a relay on its signed request', async () => {
    const r = makeTestRelay({ nickname: 'leaver' });
    await client.register(signDescriptor(r.identity, r.descriptor));
    const id = r.descriptor.id;
    const stranger = makeTestRelay();
    // A withdraw signed by someone else, sent to this relay's URL.
    const forged = signWithdraw(stranger.identity, { id: stranger.descriptor.id, published: Date.now() });
    const res = await fetch(`${dir.url}/v1/relays/${id}`, {
      method: 'DELETE',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(forged),
    });
    assert.equal(res.status, 400);
    assert.equal((await errorOf(res)).code, 'ALLIUM_WITHDRAW_SIGNATURE');
    await client.withdraw(signWithdraw(r.identity, { id, published: Date.now() }));
    await rejectsWith(client.relay(id), 'ALLIUM_DIRECTORY_NOT_FOUND');
    assert.ok(!(await client.consensus()).relays.some((x) => x.id === id));
  });

  it('answers bad input with 4xx JSON errors and keeps serving', async () => {
    const cases: [string, RequestInit, number, string][] = [
      [
        '/v1/relays',
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' },
        400,
        'ALLIUM_HTTP_BAD_JSON',
      ],
      [
        '/v1/relays',
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: '' },
        400,
        'ALLIUM_HTTP_BAD_JSON',
      ],
      [
        '/v1/relays',
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[1,2,3]' },
        400,
        'ALLIUM_ENVELOPE_INVALID',
      ],
      [
        '/v1/relays',
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'null' },
        400,
        'ALLIUM_ENVELOPE_INVALID',
      ],
      [
        '/v1/relays',
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"body":"{}","signature":""}',
        },
        400,
        'ALLIUM_DESCRIPTOR_INVALID',
      ],
      [
        '/v1/relays',
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"__proto__":{"x":1}}' },
        400,
        'ALLIUM_HTTP_BAD_JSON',
      ],
      [
        '/v1/relays',
        { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' },
        415,
        'ALLIUM_HTTP_MEDIA_TYPE',
      ],
      [
        '/v1/relays',
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: `"${'x'.repeat(70_000)}"` },
        413,
        'ALLIUM_HTTP_TOO_LARGE',
      ],
      [
        '/v1/relays',
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: Buffer.from([0xff, 0xfe, 0x00, 0x81]),
        },
        400,
        'ALLIUM_HTTP_BAD_JSON',
      ],
      ['/v1/relays/not-an-id', { method: 'GET' }, 400, 'ALLIUM_RELAY_ID_INVALID'],
      [`/v1/relays/${'0'.repeat(64)}`, { method: 'GET' }, 404, 'ALLIUM_RELAY_NOT_FOUND'],
      [`/v1/relays/${'0'.repeat(64)}`, { method: 'DELETE' }, 404, 'ALLIUM_RELAY_NOT_FOUND'],
      ['/v1/nothing', { method: 'GET' }, 404, 'ALLIUM_HTTP_NOT_FOUND'],
      ['/%E0%A4%A', { method: 'GET' }, 400, 'ALLIUM_HTTP_BAD_REQUEST'],
    ];
    for (const [path, init, status, code] of cases) {
      const res = await fetch(`${dir.url}${path}`, init);
      const e = await errorOf(res);
      assert.equal(res.status, status, `${init.method} ${path}: ${e.code} ${e.message}`);
      assert.equal(e.code, code, `${init.method} ${path}`);
    }
    assert.equal(await client.whoami(), '127.0.0.1');
  });

  it('survives raw garbage bytes on the socket', async () => {
    const garbage = Buffer.from([
      0x16,
      0x03,
      0x01,
      0x00,
      0xff,
      0x00,
      0x0d,
      0x0a,
      0x0d,
      0x0a,
      ...Buffer.alloc(64, 0xaa),
    ]);
    const answer = await rawExchange(dir.url, garbage);
    assert.ok(answer === '' || answer.startsWith('HTTP/1.1 400'), answer.slice(0, 100));
    if (answer !== '') assert.match(answer, /ALLIUM_HTTP_MALFORMED/);
    const answer2 = await rawExchange(
      dir.url,
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n'),
    );
    assert.ok(answer2 === '' || answer2.startsWith('HTTP/1.1 400'), answer2.slice(0, 100));
    // And a normal request afterwards is served.
    assert.equal(await client.whoami(), '127.0.0.1');
    assert.ok((await client.consensus()).serial > 0);
  });

  it('serves an HTML status page that escapes what relays publish', async () => {
    const r = makeTestRelay({ nickname: 'statusrelay', version: 'allium/0.5.0<script>x</script>' });
    await client.register(signDescriptor(r.identity, r.descriptor));
    const res = await fetch(`${dir.url}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    const html = await res.text();
    assert.match(html, /statusrelay/);
    assert.match(html, new RegExp(`data-relay-id="${r.descriptor.id}"`));
    assert.match(html, /127\.0\.0\.1:9001/);
    assert.match(html, /<dd id="serial">\d+<\/dd>/);
    assert.ok(!html.includes('<script>'));
    assert.ok(html.includes('&#60;script&#62;'));
  });
});

describe('Directory lifecycle', () => {
  it('drops a relay that stops refreshing within the TTL', async () => {
    const dir = await startDir({ relayTtlMs: 1000 });
    try {
      const client = clientFor(dir);
      const r = makeTestRelay({ nickname: 'shortlived' });
      const t0 = Date.now();
      await client.register(signDescriptor(r.identity, r.descriptor));
      assert.equal((await client.consensus()).relays.length, 1);
      await sleep(500);
      // A refresh keeps it listed past the first TTL (checked unless this machine stalled for 300 ms)...
      const beforeRefresh = Date.now();
      await client.register(signDescriptor(r.identity, { ...r.descriptor, published: Date.now() }));
      const refreshed = Date.now();
      await sleep(Math.max(0, t0 + 1200 - Date.now()));
      if (Date.now() - beforeRefresh < 900) assert.equal((await client.consensus()).relays.length, 1);
      // ...and without refreshes it drops out.
      await sleep(Math.max(0, refreshed + 1100 - Date.now()));
      assert.equal((await client.consensus()).relays.length, 0);
      await rejectsWith(client.relay(r.descriptor.id), 'ALLIUM_DIRECTORY_NOT_FOUND');
    } finally {
      await dir.stop();
    }
  });

  it('rebuilds the consensus with a higher serial once it passes freshUntil', async () => {
    const dir = await startDir({ consensusFreshMs: 100, consensusValidMs: 1000 });
    try {
      const client = clientFor(dir);
      const c1 = await client.consensus();
      assert.equal(c1.freshUntil - c1.validAfter, 100);
      assert.equal(c1.validUntil - c1.validAfter, 1000);
      await sleep(150);
      const c2 = await client.consensus({ minSerial: c1.serial });
      assert.ok(c2.serial > c1.serial);
      assert.ok(c2.validAfter >= c1.freshUntil);
    } finally {
      await dir.stop();
    }
  });

  it('keeps its key, relays and serial order across a restart', async () => {
    const dataDir = await tempDir();
    const d1 = await startDir({ dataDir });
    const key = d1.publicKey;
    const r = makeTestRelay({ nickname: 'persistent' });
    const c1 = clientFor(d1);
    await c1.register(signDescriptor(r.identity, r.descriptor));
    const before = await c1.consensus();
    await d1.stop();
    await d1.stop(); // idempotent

    const keyStat = await stat(join(dataDir, 'directory-key'));
    assert.equal(keyStat.mode & 0o777, 0o600);
    const relaysStat = await stat(join(dataDir, 'relays.json'));
    assert.equal(relaysStat.mode & 0o077, 0);

    const d2 = await startDir({ dataDir });
    try {
      assert.deepEqual(d2.publicKey, key);
      // A client configured with the old key verifies the new directory's consensus.
      const c2 = new DirectoryClient({ url: d2.url, directoryKey: key });
      const after = await c2.consensus({ minSerial: before.serial });
      assert.ok(after.serial > before.serial);
      assert.deepEqual(
        after.relays.map((x) => x.id),
        [r.descriptor.id],
      );
      assert.equal((await c2.relay(r.descriptor.id)).nickname, 'persistent');
    } finally {
      await d2.stop();
    }
  });

  it('a client with the wrong directory key refuses the consensus', async () => {
    const d = await startDir();
    try {
      const other = await startDir();
      await other.stop();
      const c = new DirectoryClient({ url: d.url, directoryKey: other.publicKey });
      await assert.rejects(c.consensus(), (err: unknown) => {
        assert.ok(err instanceof DocumentError);
        assert.equal(err.code, 'ALLIUM_CONSENSUS_SIGNATURE');
        return true;
      });
      await rejectsWith(new DirectoryClient({ url: d.url }).consensus(), 'ALLIUM_DIRECTORY_NO_KEY');
    } finally {
      await d.stop();
    }
  });

  it('runs the reachability check before listing, and reports why a relay was refused', async () => {
    const seen: string[] = [];
    const d = await startDir({
      reachabilityCheck: async (desc) => {
        seen.push(desc.id);
        if (desc.port === 1) throw new Error('connection refused');
      },
    });
    try {
      const client = clientFor(d);
      const bad = makeTestRelay({ port: 1 });
      await assert.rejects(client.register(signDescriptor(bad.identity, bad.descriptor)), (err: unknown) => {
        assert.ok(err instanceof DirectoryClientError);
        assert.equal(err.remoteCode, 'ALLIUM_RELAY_UNREACHABLE');
        assert.match(err.message, /not reachable from the directory at 127\.0\.0\.1:1: connection refused/);
        return true;
      });
      const good = makeTestRelay();
      const env: SignedEnvelope = signDescriptor(good.identity, good.descriptor);
      await client.register(env);
      // A refresh with the same address is not re-checked.
      await client.register(signDescriptor(good.identity, { ...good.descriptor, published: Date.now() }));
      assert.deepEqual(seen, [bad.descriptor.id, good.descriptor.id]);
      assert.equal((await client.consensus()).relays.length, 1);
    } finally {
      await d.stop();
    }
  });
});
