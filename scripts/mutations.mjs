// The mutations scripts/mutation-check.mjs applies, one at a time: each breaks the code on purpose in
// one place, and `test` (a test file, as a path in the source tree) must then fail. `name` narrows the
// run to the tests whose names match (node's --test-name-pattern); `in` is a source file or a folder
// searched for `search`, which must occur exactly once there; `expect`, if given, must match the failing
// run's output (the failure is the one meant). Keep `search` short and specific, so a mutation still
// applies after the code around it moves.
//
// INSUITE (at the end) names the ones test/mutation-checks.test.ts runs on every `npm test`: quick,
// and from different parts of the code.

// Source lines holding template literals, as text (#{ stands for the dollar-brace of a placeholder).
const source = (text) => text.replaceAll('#{', '$' + '{');
const SOCKS_ISOLATION = source(
  "const isolation = step.username !== undefined ? `socks:#{step.username}:#{step.password ?? ''}` : '';",
);
const SOCKS_ISOLATION_PER_STREAM = source(
  'const isolation = `socks:#{step.username}:#{process.hrtime.bigint()}`;',
);

export const MUTATIONS = [
  // ---- cell crypto (src/crypto) ----
  {
    id: 'forward-tag-unchecked',
    what: 'a relay opens forward cells without checking their tag',
    edits: [
      {
        in: 'src/crypto',
        search: 'if (!timingSafeEqual(mac, body.subarray(0, FORWARD_TAG_LEN))) break;',
        replace: 'if (false && !timingSafeEqual(mac, body.subarray(0, FORWARD_TAG_LEN))) break;',
      },
    ],
    test: 'src/crypto/forward-onion.test.ts',
    name: '3-hop circuit|caught by the very next hop',
  },
  {
    id: 'forward-tag-unchecked-network',
    what: 'a relay opens forward cells without checking their tag (seen from a network with a tagging relay)',
    edits: [
      {
        in: 'src/crypto',
        search: 'if (!timingSafeEqual(mac, body.subarray(0, FORWARD_TAG_LEN))) break;',
        replace: 'if (false && !timingSafeEqual(mac, body.subarray(0, FORWARD_TAG_LEN))) break;',
      },
    ],
    test: 'test/tampering.test.ts',
  },
  {
    id: 'mac-without-seq',
    what: 'the forward tag leaves out the cell sequence number (client and relays alike)',
    edits: [
      {
        in: 'src/crypto',
        search: 'inner.writeUInt32BE(this.seqNo % TWO_32, BLOCK_LEN + 4);',
        replace: 'inner.writeUInt32BE(0, BLOCK_LEN + 4);',
      },
    ],
    test: 'test/replay.test.ts',
    name: 'relay cell sent again',
  },
  {
    id: 'ntor-y-from-onionskin',
    what: "a relay derives its handshake key Y from the client's X instead of fresh randomness",
    edits: [
      {
        in: 'src/crypto',
        search: 'const y = ephemeral ?? X25519Key.generate();',
        replace: "const y = X25519Key.fromSecret(createHmac('sha256', 'y').update(X).digest());",
      },
    ],
    test: 'test/replay.test.ts',
    name: 'replayed CREATE',
  },
  {
    id: 'forward-filler-zero',
    what: 'the client leaves out the filler, so a hop past the entry finds its tag over the wrong bytes',
    edits: [
      {
        in: 'src/crypto',
        search: 'for (let b = 0; b < tail.length; b++) filler[b] ^= tail[b];',
        replace: 'void tail;',
      },
    ],
    test: 'src/crypto/forward-onion.test.ts',
    name: '3-hop circuit',
  },
  {
    id: 'backward-tag-ignores-body',
    what: "a backward layer's tag leaves the cell body out of its hash (both ends alike)",
    edits: [
      {
        in: 'src/crypto',
        search: 'layered.copy(input, KEY_LEN + SEQ_LEN, off + BACKWARD_TAG_LEN, off + CELL_BODY_LEN);',
        replace: '',
      },
    ],
    test: 'src/crypto/backward-layer.test.ts',
    name: 'any change by any relay',
  },
  {
    id: 'backward-tag-ignores-body-network',
    what: "a backward layer's tag leaves the cell body out of its hash (seen from a network with a tagging relay)",
    edits: [
      {
        in: 'src/crypto',
        search: 'layered.copy(input, KEY_LEN + SEQ_LEN, off + BACKWARD_TAG_LEN, off + CELL_BODY_LEN);',
        replace: '',
      },
    ],
    test: 'test/tampering.test.ts',
    name: 'on the way back',
  },

  // ---- the client's SOCKS port ----
  {
    id: 'socks-ignores-credentials',
    what: 'the SOCKS port drops the username and password instead of isolating by them',
    edits: [
      {
        in: 'src/net',
        search: SOCKS_ISOLATION,
        replace: "const isolation = '';",
      },
    ],
    test: 'test/e2e-testnet.test.ts',
    name: 'SOCKS credentials isolate',
  },
  {
    id: 'socks-circuit-per-stream',
    what: 'the SOCKS port gives every stream a key of its own, so one user never reuses a circuit',
    edits: [
      {
        in: 'src/net',
        search: SOCKS_ISOLATION,
        replace: SOCKS_ISOLATION_PER_STREAM,
      },
    ],
    test: 'test/e2e-testnet.test.ts',
    name: 'SOCKS credentials isolate',
  },
  {
    id: 'socks-garbage-left-open',
    what: 'the SOCKS port leaves a connection that sent garbage open instead of closing it',
    edits: [{ in: 'src/net', search: 'socket.end(step.bytes);', replace: 'void step.bytes;' }],
    test: 'test/e2e-testnet.test.ts',
    name: 'garbage bytes',
    expect: 'the SOCKS port closed the connection',
  },
  {
    id: 'link-listener-stops-on-garbage',
    what: 'a failed link handshake (garbage) makes the relay stop accepting links',
    edits: [
      {
        in: 'src/net',
        search: 'opts.onHandshakeError?.(err);',
        replace: 'server.close();\n          opts.onHandshakeError?.(err);',
      },
    ],
    test: 'test/e2e-testnet.test.ts',
    name: 'garbage bytes',
  },
  // ---- relays under attack ----
  {
    id: 'integrity-not-counted',
    what: 'a relay destroys a tampered circuit without counting the integrity failure',
    edits: [{ in: 'src/core', search: 'integrityFailures++', replace: 'integrityFailures += 0' }],
    test: 'test/tampering.test.ts',
  },
  {
    id: 'memory-per-stalled-connection',
    what: 'a relay holds 256 KiB for every connection still in its link handshake',
    edits: [
      {
        in: 'src/net',
        search: 'handshaking.add(socket);',
        replace:
          'handshaking.add(socket);\n      Object.assign(socket, { ballast: Buffer.alloc(256 * 1024, 1) });',
      },
    ],
    test: 'test/stress.test.ts',
    name: '1,000 connections',
    expect: 'RSS grew by',
  },
  {
    id: 'link-queue-limit-loose',
    what: "a relay sets each link's queue limit four times higher than --max-link-queue",
    edits: [{ in: 'src/relay', search: 'limitBytes: limit,', replace: 'limitBytes: 4 * limit,' }],
    test: 'test/queue-limits.test.ts',
    name: 'frozen client',
  },
  {
    id: 'total-queue-closes-least',
    what: 'past --max-total-queue, a relay closes the link with the least queued instead of the most',
    edits: [
      {
        in: 'src/relay',
        search: 'l.writableLength > worst.writableLength',
        replace: 'l.writableLength < worst.writableLength',
      },
    ],
    test: 'test/queue-limits.test.ts',
    name: 'max-total-queue',
  },
  {
    id: 'total-queue-unchecked',
    what: 'a relay never closes a link for --max-total-queue',
    edits: [
      {
        in: 'src/relay',
        search: 'while (total > max) {',
        replace: 'while (false && total > max) {',
      },
    ],
    test: 'test/queue-limits.test.ts',
    name: 'max-total-queue',
  },
  {
    id: 'queue-peak-not-kept',
    what: 'a link does not keep the peak of its queue (the metric reads 0)',
    edits: [{ in: 'src/net', search: 'if (queued > this.queuePeak) this.queuePeak = queued;', replace: '' }],
    test: 'test/queue-limits.test.ts',
    name: 'frozen client',
  },
  // ---- what a link carries ----
  {
    id: 'cells-in-the-clear',
    what: 'links and forward layers encrypt nothing (both ends alike, so the network still works)',
    edits: [
      {
        in: 'src/crypto/noise.ts',
        search: 'const body = c.update(plaintext);',
        replace: 'c.update(plaintext);\n    const body = Buffer.from(plaintext);',
      },
      {
        in: 'src/crypto/noise.ts',
        search: 'const body = d.update(ciphertext.subarray(0, split));',
        replace: 'const body = Buffer.from(ciphertext.subarray(0, split));',
      },
      {
        in: 'src/crypto/noise.ts',
        search: 'const rest = d.final();',
        replace: 'const rest = Buffer.alloc(0);',
      },
      {
        in: 'src/crypto/relay-crypto.ts',
        search: "this.ctr = createCipheriv('aes-256-ctr', cipherKey, Buffer.alloc(16));",
        replace: 'this.ctr = { update: (b: Buffer) => Buffer.from(b) } as unknown as Cipher;',
      },
    ],
    test: 'test/link-capture.test.ts',
    expect: 'a link carried the destination',
  },
  // ---- what relays log ----
  {
    id: 'exit-logs-destination-name',
    what: 'an exit logs the host name of every stream at debug level (without --log-sensitive)',
    edits: [
      {
        in: 'src/relay',
        search: "if (ctx.logSensitive) ctx.log.info({ host, port }, 'exit stream requested');",
        replace: "ctx.log.debug({ target: host }, 'exit stream requested');",
      },
    ],
    test: 'test/privacy-logs.test.ts',
    expect: 'relay log lines name the destination',
  },
  {
    id: 'relay-logs-onion-key',
    what: 'a relay logs its onion key (base64) when it starts listening',
    edits: [
      {
        in: 'src/relay',
        search: "exit: this.isExit }, 'relay listening'",
        replace:
          "exit: this.isExit, k: this.onionKeys.current.secret().toString('base64') }, 'relay listening'",
      },
    ],
    test: 'test/privacy-logs.test.ts',
    expect: 'holds the secret of relay',
  },
  // ---- flow control (src/core) ----
  {
    id: 'stream-window-ignored',
    what: 'a stream sends past its stream window',
    edits: [
      {
        in: 'src/core',
        search: 'while (this.pendingBytes > 0 && streamWindow > 0 && circuitWindow > 0)',
        replace: 'while (this.pendingBytes > 0 && circuitWindow > 0)',
      },
    ],
    test: 'src/core/stream-mux.test.ts',
    name: 'stream window',
  },
  {
    id: 'circuit-window-ignored',
    what: 'the streams of a circuit send past the circuit window',
    edits: [
      {
        in: 'src/core',
        search: 'while (this.pendingBytes > 0 && streamWindow > 0 && circuitWindow > 0)',
        replace: 'while (this.pendingBytes > 0 && streamWindow > 0)',
      },
    ],
    test: 'src/core/stream-mux.test.ts',
    name: 'circuit window',
  },
  {
    id: 'circuit-sendme-tag-unchecked',
    what: 'a circuit SENDME is accepted whatever tag it echoes',
    edits: [{ in: 'src/core', search: 'if (!expected?.equals(sendme.tag)) {', replace: 'if (false) {' }],
    test: 'src/core/stream-mux.test.ts',
    name: 'does not echo the tag',
  },
  {
    id: 'held-ignored',
    what: 'streams send while their circuit is held (the link below backed up)',
    edits: [
      {
        in: 'src/core',
        search: 'let circuitWindow = this.mux.held() ? 0 : this.mux.window.packageWindow;',
        replace: 'let circuitWindow = this.mux.window.packageWindow;',
      },
    ],
    test: 'src/core/stream-mux.test.ts',
    name: 'while held',
  },
  {
    id: 'exit-consumes-on-delivery',
    what: "an exit's stream counts DATA as consumed when delivered, not when its socket took it",
    edits: [
      {
        in: 'src/core',
        search: 'this.consumeOnWrite = opts.consumeOnWrite ?? false;',
        replace: 'this.consumeOnWrite = false;',
      },
    ],
    test: 'src/core/stream-mux.test.ts',
    name: 'consumeOnWrite',
  },
  // ---- the directory ----
  {
    id: 'directory-skips-check-on-move',
    what: 'the directory lists a relay that moved to another port without checking it there',
    edits: [{ in: 'src/directory', search: 'held.descriptor.port !== d.port ||', replace: '' }],
    test: 'src/directory/service.test.ts',
    name: 'checks a move',
  },
  {
    id: 'directory-consensus-stale',
    what: 'the directory keeps serving its cached consensus after the listed relays changed',
    edits: [
      {
        in: 'src/directory',
        search: 'if (c.version === this.registry.version) return c;',
        replace: 'return c;',
      },
    ],
    test: 'src/directory/service.test.ts',
    name: 'cached consensus',
  },

  // ---- fetch ----
  {
    id: 'fetch-keeps-credentials-cross-origin',
    what: 'fetch sends the Authorization header on to another origin after a redirect',
    edits: [{ in: 'src/net/fetch.ts', search: "headers.delete('authorization');", replace: '' }],
    test: 'src/net/fetch.test.ts',
    name: 'drops credentials',
  },
  {
    id: 'fetch-no-gzip',
    what: 'fetch hands a gzip body over without decoding it',
    edits: [{ in: 'src/net/fetch.ts', search: "e === 'gzip' || e === 'x-gzip'", replace: "e === 'x-gzip'" }],
    test: 'src/net/fetch.test.ts',
    name: 'gzip',
  },
  {
    id: 'fetch-303-keeps-body',
    what: 'fetch sends the POST body again with the GET that follows a 303',
    edits: [{ in: 'src/net/fetch.ts', search: 'body = null;', replace: '' }],
    test: 'src/net/fetch.test.ts',
    name: 'follows redirects',
  },
  {
    id: 'onion-messages-at-the-entry',
    what: "a relay answers onion service messages on a circuit from a client's link (a one-hop circuit)",
    edits: [
      {
        in: 'src/core/onion-relay.ts',
        search: 'if (circ.firstHop || circ.next || circ.extending)',
        replace: 'if (circ.next || circ.extending)',
      },
    ],
    test: 'test/onion-relays.test.ts',
    name: 'one-hop',
  },
  {
    id: 'rendezvous-passes-without-its-layer',
    what: "the rendezvous point passes a joined circuit's cell into the other without its backward layer there",
    edits: [
      {
        in: 'src/core/onion-relay.ts',
        search: 'const out = other.crypto.backward.add(input);',
        replace: 'const out = input;',
      },
    ],
    test: 'src/core/onion-relay.test.ts',
    name: 'joins the two circuits',
  },
  {
    id: 'introduction-unbound',
    what: 'an introduction point takes ESTABLISH_INTRO without checking it was made for this circuit',
    edits: [
      {
        in: 'src/core/onion-relay.ts',
        search: 'verifyEstablishIntro(m, circ.crypto.forward.circuitBinding());',
        replace: '',
      },
    ],
    test: 'src/core/onion-relay.test.ts',
    name: 'another circuit',
  },
  {
    id: 'onion-answer-from-a-middle',
    what: "a client takes an onion service answer (INTRODUCE_ACK, RENDEZVOUS2, ...) sealed by a hop that is not the circuit's last",
    edits: [
      {
        in: 'src/core/circuit-receive.ts',
        search: 'if (!last || !circuit.onionMessage) {',
        replace: 'if (!circuit.onionMessage) {',
      },
    ],
    test: 'src/core/circuit-receive.test.ts',
    name: 'onion answer from the last hop',
  },
  {
    id: 'joined-sendme-without-end-to-end-tag',
    what: "a joined circuit's SENDMEs echo a tag other than the end-to-end one the far end sealed",
    edits: [
      {
        in: 'src/core/circuit-receive.ts',
        search: 'farEndMessage(circuit, command, streamId, data, opened.tag);',
        replace: 'farEndMessage(circuit, command, streamId, data, Buffer.alloc(16));',
      },
    ],
    test: 'test/onion-services.test.ts',
    name: '10 MiB',
  },
  {
    id: 'service-replay-cache-unused',
    what: 'an onion service answers an INTRODUCE2 whose client key it has seen through that point',
    edits: [
      { in: 'src/service/introductions.ts', search: 'point.replay.admit(message.clientKey);', replace: '' },
    ],
    test: 'test/onion-services.test.ts',
    name: 'replayed',
  },
  {
    id: 'service-dials-unlisted-rendezvous',
    what: 'an onion service builds a rendezvous circuit to a relay its consensus does not list',
    edits: [{ in: 'src/service/introductions.ts', search: 'if (!relay) {', replace: 'if (false) {' }],
    test: 'test/onion-services.test.ts',
    name: 'does not list',
  },
  {
    id: 'service-serves-any-port',
    what: 'an onion service takes a BEGIN to a port it does not publish',
    edits: [
      {
        in: 'src/service/service-streams.ts',
        search: 'if (port !== this.virtualPort) {',
        replace: 'if (false) {',
      },
    ],
    test: 'test/onion-services.test.ts',
    name: 'does not publish',
  },
  {
    id: 'client-stops-at-a-lost-point',
    what: "a client gives up (and fetches again) at the first introduction point that refuses, instead of trying the descriptor's others",
    edits: [
      {
        in: 'src/client/onion-connect.ts',
        search:
          'if (!(await this.introduce(relay, encodeIntroduce(message), rendezvousPoint, isolation))) continue;',
        replace:
          'if (!(await this.introduce(relay, encodeIntroduce(message), rendezvousPoint, isolation))) break;',
      },
    ],
    test: 'test/onion-services.test.ts',
    name: 'introduction points are lost',
  },
  {
    id: 'client-keeps-a-stale-descriptor',
    what: 'a client whose cached descriptor led to no introduction point reports the service down without fetching a fresh one',
    edits: [{ in: 'src/client/onion-connect.ts', search: 'this.cache.drop(hex);', replace: 'throw err;' }],
    test: 'test/onion-services.test.ts',
    name: 'restarted',
  },
  {
    id: 'service-key-readable-by-others',
    what: 'an onion service takes a key file that others may read',
    edits: [{ in: 'src/service/service-key.ts', search: 'if (mode & 0o077) {', replace: 'if (false) {' }],
    test: 'src/service/service-key.test.ts',
    name: 'refused',
  },
];

export const INSUITE = [
  'forward-tag-unchecked',
  'mac-without-seq',
  'ntor-y-from-onionskin',
  'stream-window-ignored',
  'circuit-sendme-tag-unchecked',
  'directory-skips-check-on-move',
  'fetch-keeps-credentials-cross-origin',
  'onion-answer-from-a-middle',
];
