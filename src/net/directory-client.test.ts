import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { makeTestRelay } from '../../test/helpers/relay-fixtures.js';
import { DocumentError, signConsensus, signDescriptor, signWithdraw } from '../core/documents.js';
import { IdentityKey } from '../crypto/keys.js';
import type { Consensus } from '../wire/directory-docs.js';
import { DirectoryClient, type DirectoryClientError } from './directory-client.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

/** A stand-in directory whose answers each test scripts. */
describe('DirectoryClient against a scripted server', () => {
  let server: http.Server;
  let url: string;
  let handler: Handler = (_q, res) => res.end();
  const seen: { method: string; url: string; body: string; type: string | undefined }[] = [];
  const dirKey = IdentityKey.generate();

  before(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        seen.push({ method: req.method ?? '', url: req.url ?? '', body, type: req.headers['content-type'] });
        handler(req, res, body);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const json =
    (status: number, value: unknown): Handler =>
    (_q, res) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
  const client = (over: { timeoutMs?: number; directoryKey?: Buffer } = {}) =>
    new DirectoryClient({ url, directoryKey: dirKey.publicKey, timeoutMs: 2000, ...over });

  async function fails(
    p: Promise<unknown>,
    code: string,
    check?: (e: DirectoryClientError) => void,
  ): Promise<void> {
    await assert.rejects(p, (err: unknown) => {
      assert.equal((err as { code?: string }).code, code, (err as Error).message);
      if (check) check(err as DirectoryClientError);
      return true;
    });
  }

  function consensusDoc(over: Partial<Consensus> = {}): Consensus {
    const now = Date.now();
    return {
      network: 'allium',
      serial: 5,
      validAfter: now - 1000,
      freshUntil: now + 60_000,
      validUntil: now + 600_000,
      directoryKey: dirKey.publicKey.toString('base64'),
      relays: [{ ...makeTestRelay().descriptor, flags: ['Running'] }],
      ...over,
    };
  }

  it('posts a descriptor as JSON and accepts 201', async () => {
    const r = makeTestRelay();
    const env = signDescriptor(r.identity, r.descriptor);
    handler = json(201, { id: r.descriptor.id, listed: true });
    seen.length = 0;
    await client().register(env);
    assert.equal(seen[0].method, 'POST');
    assert.equal(seen[0].url, '/v1/relays');
    assert.equal(seen[0].type, 'application/json');
    assert.deepEqual(JSON.parse(seen[0].body), env);
  });

  it('reports a 4xx with the directory code and message', async () => {
    handler = json(400, { error: { code: 'ALLIUM_DESCRIPTOR_SIGNATURE', message: 'bad sig' } });
    const r = makeTestRelay();
    await fails(
      client().register(signDescriptor(r.identity, r.descriptor)),
      'ALLIUM_DIRECTORY_REJECTED',
      (e) => {
        assert.equal(e.status, 400);
        assert.equal(e.remoteCode, 'ALLIUM_DESCRIPTOR_SIGNATURE');
        assert.match(e.message, /bad sig/);
      },
    );
  });

  it('maps 404, 5xx and non-JSON answers', async () => {
    handler = json(404, { error: { code: 'ALLIUM_RELAY_NOT_FOUND', message: 'no' } });
    await fails(client().relay('ab'.repeat(32)), 'ALLIUM_DIRECTORY_NOT_FOUND');
    handler = (_q, res) => {
      res.writeHead(502);
      res.end('<html>bad gateway</html>');
    };
    await fails(client().whoami(), 'ALLIUM_DIRECTORY_SERVER_ERROR', (e) => assert.equal(e.status, 502));
    handler = (_q, res) => res.end('not json');
    await fails(client().whoami(), 'ALLIUM_DIRECTORY_BAD_RESPONSE');
    handler = json(200, { address: 'not an address' });
    await fails(client().whoami(), 'ALLIUM_DIRECTORY_BAD_RESPONSE');
    handler = json(200, { address: '203.0.113.9' });
    assert.equal(await client().whoami(), '203.0.113.9');
  });

  it('refuses a relay answer whose keys do not match the id asked for', async () => {
    const r = makeTestRelay();
    const other = makeTestRelay();
    const answer = { ...r.descriptor, id: other.descriptor.id };
    handler = json(200, answer);
    await fails(client().relay(other.descriptor.id), 'ALLIUM_DIRECTORY_BAD_RESPONSE');
    handler = json(200, r.descriptor);
    const got = await client().relay(r.descriptor.id);
    assert.equal(got.onionKey, r.descriptor.onionKey);
    await fails(client().relay('../../etc'), 'ALLIUM_DIRECTORY_REJECTED');
  });

  it('times out a directory that does not answer', async () => {
    handler = () => {}; // never answers
    const t0 = Date.now();
    await fails(client({ timeoutMs: 200 }).whoami(), 'ALLIUM_DIRECTORY_TIMEOUT');
    assert.ok(Date.now() - t0 < 1500);
  });

  it('refuses an answer over the size cap', async () => {
    handler = (_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`{"address":"${'1'.repeat(100_000)}"}`);
    };
    await fails(client().whoami(), 'ALLIUM_DIRECTORY_BAD_RESPONSE', (e) =>
      assert.match(e.message, /exceeds/),
    );
    handler = (_q, res) => {
      // No content-length: the cap must hold while streaming.
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      for (let i = 0; i < 20; i++) res.write('x'.repeat(8192));
      res.end();
    };
    await fails(client().whoami(), 'ALLIUM_DIRECTORY_BAD_RESPONSE', (e) =>
      assert.match(e.message, /exceeds/),
    );
  });

  it('reports an unreachable directory', async () => {
    const c = new DirectoryClient({ url: 'http://127.0.0.1:1', timeoutMs: 2000 });
    await fails(c.whoami(), 'ALLIUM_DIRECTORY_UNREACHABLE', (e) => assert.match(e.message, /127\.0\.0\.1:1/));
  });

  it('verifies the consensus: good, unsigned, forged, expired, rollback', async () => {
    const good = signConsensus(dirKey, consensusDoc());
    handler = json(200, good);
    const c = await client().consensus();
    assert.equal(c.serial, 5);
    const fetched = await client().fetchConsensus();
    assert.deepEqual(fetched.document, good);

    const docFail = async (code: string, opts = {}) =>
      assert.rejects(client().consensus(opts), (err: unknown) => {
        assert.ok(err instanceof DocumentError, String(err));
        assert.equal(err.code, code);
        return true;
      });
    await docFail('ALLIUM_CONSENSUS_ROLLBACK', { minSerial: 6 });
    handler = json(200, { body: good.body });
    await docFail('ALLIUM_CONSENSUS_SIGNATURE');
    handler = json(200, { body: good.body, signature: '' });
    await docFail('ALLIUM_CONSENSUS_SIGNATURE');
    const mallory = IdentityKey.generate();
    handler = json(
      200,
      signConsensus(mallory, consensusDoc({ directoryKey: mallory.publicKey.toString('base64') })),
    );
    await docFail('ALLIUM_CONSENSUS_SIGNATURE');
    const old = Date.now() - 10 * 3600_000;
    handler = json(
      200,
      signConsensus(dirKey, consensusDoc({ validAfter: old, freshUntil: old + 1, validUntil: old + 2 })),
    );
    await docFail('ALLIUM_CONSENSUS_EXPIRED');
    handler = (_q, res) => res.end('{{{');
    await docFail('ALLIUM_CONSENSUS_INVALID');
    await fails(client({ directoryKey: undefined }).consensus(), 'ALLIUM_DIRECTORY_NO_KEY');
  });

  it('withdraw sends DELETE to the relay named in the envelope', async () => {
    const r = makeTestRelay();
    handler = json(200, { id: r.descriptor.id, listed: false });
    seen.length = 0;
    const env = signWithdraw(r.identity, { id: r.descriptor.id, published: Date.now() });
    await client().withdraw(env);
    assert.equal(seen[0].method, 'DELETE');
    assert.equal(seen[0].url, `/v1/relays/${r.descriptor.id}`);
    assert.deepEqual(JSON.parse(seen[0].body), env);
  });

  it('checks /v1/key answers', async () => {
    handler = json(200, { publicKey: dirKey.publicKey.toString('base64'), id: dirKey.id.toString('hex') });
    assert.deepEqual(await client().publicKey(), dirKey.publicKey);
    handler = json(200, { publicKey: dirKey.publicKey.toString('base64'), id: '00'.repeat(32) });
    await fails(client().publicKey(), 'ALLIUM_DIRECTORY_BAD_RESPONSE');
  });
});
