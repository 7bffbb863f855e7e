// The catalogue of every error code Allium raises on purpose: what each means and what the user can
// do about it. One table on purpose (longer than most files): `AlliumError.code` is typed by its keys,
// docs/errors.md is generated from it (`npm run docs:errors`), `allium` prints its advice
// (src/cli/explain-error.ts), and test/error-catalogue.test.ts fails on a code thrown in src/ that it
// lacks. It imports nothing, so every layer (wire included) may import it.

/** The sections of docs/errors.md, in order. */
export const ERROR_AREAS = {
  config: 'Command line, config files and options',
  files: 'Key and state files',
  'directory-client': 'Reaching the directory',
  documents: 'Consensus and descriptors',
  directory: "The directory's answers",
  link: 'Links between clients and relays',
  circuit: 'Circuits, handshakes and cells',
  path: 'Choosing a path',
  stream: 'Streams and exits',
  onion: 'Onion services',
  fetch: '`allium fetch` and the library',
  testnet: 'Test networks and their SOCKS client',
} as const;

export type ErrorArea = keyof typeof ERROR_AREAS;

export interface ErrorCodeEntry {
  readonly area: ErrorArea;
  /** What happened, in one line. */
  readonly meaning: string;
  /** What the user (operator, library caller) can do about it, in one line. */
  readonly remedy: string;
}

export const ERROR_CATALOGUE = {
  // ---- Command line, config files and options ----
  ALLIUM_CONFIG_READ: {
    area: 'config',
    meaning: 'the file given to `--config` cannot be read (the message has the system code)',
    remedy: 'check the path and that this user may read it',
  },
  ALLIUM_CONFIG_JSON: {
    area: 'config',
    meaning: 'the config file is not valid JSON',
    remedy: 'fix the syntax at the place the message names (JSON has no comments and no trailing commas)',
  },
  ALLIUM_CONFIG_SHAPE: {
    area: 'config',
    meaning: 'the config file holds something other than one JSON object',
    remedy: 'write one object whose keys are the long option names in camelCase, e.g. `{"dataDir": "./r1"}`',
  },
  ALLIUM_CONFIG_KEY: {
    area: 'config',
    meaning: 'the config file has a key this command does not know',
    remedy: 'fix the spelling, or remove the key; configuration.md lists the keys of each command',
  },
  ALLIUM_CONFIG_VALUE: {
    area: 'config',
    meaning: 'a key of the config file has a value of the wrong type or out of range',
    remedy:
      'give the key a value its flag would take (the key `dataDir` is the flag `--data-dir`); see configuration.md',
  },
  ALLIUM_AUTHORITY_SET_INVALID: {
    area: 'config',
    meaning:
      'the authority set (`--authorities FILE`) does not parse, repeats an authority, or gives an id that is not SHA-256 of its identity key',
    remedy:
      "copy the set file again from the authorities' operators; protocol.md §6.5 gives its fields, and the message names the wrong one",
  },
  ALLIUM_LISTEN: {
    area: 'config',
    meaning:
      'a role cannot listen on the address of one of its flags (`--port`, `--socks`, `--http-proxy`, ...)',
    remedy:
      'pick another `HOST:PORT` for that flag, or port 0 for any free port; `ss -ltnp` shows who holds it',
  },
  ALLIUM_METRICS_LISTEN: {
    area: 'config',
    meaning: 'the metrics port (`--metrics`) cannot listen: the address is taken or not allowed',
    remedy: 'pick another `--metrics HOST:PORT`, or port 0 for any free port',
  },
  ALLIUM_DASHBOARD_LISTEN: {
    area: 'config',
    meaning: "the client's dashboard (`--dashboard`) cannot listen: the address is taken or not allowed",
    remedy: 'pick another `--dashboard HOST:PORT`, or port 0 for any free port',
  },
  ALLIUM_LOCAL_HTTP_LISTEN: {
    area: 'config',
    meaning: 'a local HTTP server (the message says which) cannot listen on its address',
    remedy: 'pick another `HOST:PORT` for it, or port 0 for any free port',
  },
  ALLIUM_HTTP_LIMITS: {
    area: 'config',
    meaning: 'HTTP server limits passed as options are out of range',
    remedy:
      'give positive timeouts (a request timeout of 0, or at least the headers timeout) and at least one connection',
  },
  ALLIUM_CLIENT_OPTIONS: {
    area: 'config',
    meaning: '`createClient` was called without its options object or without a `directory` URL',
    remedy: 'call `createClient({ directory: URL, directoryKey: base64 })`; see library.md',
  },
  ALLIUM_CLIENT_DIRECTORY_KEY: {
    area: 'config',
    meaning: '`createClient` got no `directoryKey`, or one that is not a 32-byte Ed25519 public key',
    remedy: 'pass the key `allium directory` (or `allium testnet`) prints as `key=`, in base64',
  },
  ALLIUM_CLIENT_PATH_LENGTH: {
    area: 'config',
    meaning: 'a client was asked for circuits of fewer than 3 relays',
    remedy: 'use `--path-length` 3 or more',
  },
  ALLIUM_RELAY_OPTIONS: {
    area: 'config',
    meaning:
      'relay options do not fit together (key lifetimes and grace periods, `--dns-server`, too many exit policy rules)',
    remedy: 'bring the option the message names within its bounds, and start the relay again',
  },
  ALLIUM_DIRECTORY_CONFIG: {
    area: 'config',
    meaning: 'directory options are out of range (times, relays per address, consensus budget, rate limit)',
    remedy: 'bring the options the message names within their bounds, and start the directory again',
  },
  ALLIUM_EXIT_POLICY_SYNTAX: {
    area: 'config',
    meaning: 'a rule of `--exit-policy` does not parse',
    remedy:
      'write each rule as `accept` or `reject`, a space, then `ADDRESS[/BITS]:PORT[-PORT]`, e.g. `accept 10.0.0.0/8:80-443`, `reject *:*`',
  },

  // ---- Key and state files ----
  ALLIUM_KEY_PERMISSIONS: {
    area: 'files',
    meaning:
      "a key file (a relay's, or the directory's `directory-key`) is readable by others; the role does not start",
    remedy: '`chmod 600` the key files in the data directory',
  },
  ALLIUM_KEY_FILE: {
    area: 'files',
    meaning: "a relay's key file (identity or onion keys) is damaged",
    remedy: 'move the file away: the relay makes a new key (a new identity key makes it a new relay)',
  },
  ALLIUM_DIRECTORY_KEY_UNREADABLE: {
    area: 'files',
    meaning: "the directory's `directory-key` exists but cannot be read",
    remedy: 'run the directory as the user who owns its data directory, or fix the file mode',
  },
  ALLIUM_DIRECTORY_KEY_MISSING: {
    area: 'files',
    meaning: "the directory's state file exists but its `directory-key` does not",
    remedy:
      'restore the key file from a backup, or move the state file away to start a new network with a new key',
  },
  ALLIUM_DIRECTORY_KEY_CORRUPT: {
    area: 'files',
    meaning: "the directory's `directory-key` is not 64 hex digits",
    remedy: 'restore it from a backup (a new key means every relay and client must be given it)',
  },
  ALLIUM_DIRECTORY_STORE_UNREADABLE: {
    area: 'files',
    meaning: "the directory's state file (its listed relays) exists but cannot be read",
    remedy: 'run the directory as the user who owns its data directory, or fix the file mode',
  },
  ALLIUM_DIRECTORY_STORE_CORRUPT: {
    area: 'files',
    meaning: "the directory's state file is damaged",
    remedy: 'restore it from a backup, or move it away to start with no relays listed (they register again)',
  },
  ALLIUM_GUARDS_READ: {
    area: 'files',
    meaning: "the client's `guards.json` exists but cannot be read",
    remedy: 'run the client as the user who owns its data directory, or fix the file mode',
  },
  ALLIUM_GUARDS_CORRUPT: {
    area: 'files',
    meaning: "the client's `guards.json` is not a guard list this client wrote",
    remedy: 'delete it: the client chooses new entry guards',
  },

  // ---- Reaching the directory ----
  ALLIUM_DIRECTORY_UNREACHABLE: {
    area: 'directory-client',
    meaning:
      'the directory URL cannot be reached (refused, reset, no route); a client says so at once and keeps trying for 30 s',
    remedy:
      'check the URL, that the directory runs and firewalls; clients with `--data-dir` keep working on their cached consensus',
  },
  ALLIUM_DIRECTORY_TIMEOUT: {
    area: 'directory-client',
    meaning: 'the directory did not answer a request in time',
    remedy: 'a directory that is overloaded or cut off; check it and the network between',
  },
  ALLIUM_DIRECTORY_REJECTED: {
    area: 'directory-client',
    meaning: 'the directory refused a request (a 4xx answer; its own code is in `remoteCode`)',
    remedy: "the message has the directory's reason; its own code (`remoteCode`) is in docs/errors.md too",
  },
  ALLIUM_DIRECTORY_NOT_FOUND: {
    area: 'directory-client',
    meaning: 'the directory answered 404: no such relay, or no such endpoint',
    remedy: 'a relay that is not listed (any more); or a URL that points at something other than a directory',
  },
  ALLIUM_DIRECTORY_SERVER_ERROR: {
    area: 'directory-client',
    meaning: 'the directory answered 5xx: it failed on its own',
    remedy:
      "nothing on this side: the directory's operator reads its log; clients keep their cached consensus",
  },
  ALLIUM_DIRECTORY_BAD_RESPONSE: {
    area: 'directory-client',
    meaning: 'the directory answered with something malformed, too large, or for the wrong relay or key',
    remedy: 'check that the URL is a directory of this release; if it is, its operator should look into it',
  },
  ALLIUM_DIRECTORY_NO_KEY: {
    area: 'directory-client',
    meaning: 'a consensus was asked for without a directory key to verify it with',
    remedy: 'pass `--directory-key` (or `directoryKey`): the key the directory prints as `key=`',
  },
  ALLIUM_HTTP_IO: {
    area: 'directory-client',
    meaning:
      'an HTTP request failed below HTTP (refused, reset, DNS); reported as `ALLIUM_DIRECTORY_UNREACHABLE`',
    remedy: 'check the address and that the server runs',
  },

  // ---- Consensus and descriptors ----
  ALLIUM_CONSENSUS_SIGNATURE: {
    area: 'documents',
    meaning:
      'the consensus is unsigned, not signed by the `--directory-key` given, or signed by fewer than a strict majority of the `--authorities` set ("2 of 5 signatures; need 3 (...)" names each one missing and why)',
    remedy:
      "copy the key again from the directory's `ready ... key=` line or status page (a directory whose data dir was wiped has a new key); with a set, check that it is the authorities' current file, and read the authorities' status pages for the signatures they could not collect",
  },
  ALLIUM_CONSENSUS_EXPIRED: {
    area: 'documents',
    meaning: 'the newest consensus is past its valid-until (or not valid yet)',
    remedy: 'start the directory again; check the clocks (`timedatectl`) of the directory and this machine',
  },
  ALLIUM_CONSENSUS_ROLLBACK: {
    area: 'documents',
    meaning: 'the directory served an older consensus than one already seen',
    remedy:
      "a restored or second directory with an old state: fix the directory; do not delete the client's cache to get past it unless you know why",
  },
  ALLIUM_CONSENSUS_INVALID: {
    area: 'documents',
    meaning: 'the consensus does not parse (not JSON, a field missing or of the wrong type)',
    remedy:
      'check that the URL is a directory of this release; clients keep their cached consensus meanwhile',
  },
  ALLIUM_VERIFY_INPUT: {
    area: 'documents',
    meaning:
      '`allium directory verify` cannot read a file it was given (the consensus or the votes), or it is not JSON of the expected shape',
    remedy:
      'give the consensus as served (`{ "body", "signatures" }`) and the votes as a JSON array or as `GET /v1/authority/votes/:validAfter` answers them',
  },
  ALLIUM_CONSENSUS_TOO_FEW_VOTES: {
    area: 'documents',
    meaning:
      'an authority holds votes from fewer than a strict majority of the configured authorities for this period, so it computes no consensus',
    remedy:
      "the authority's status page and log name the votes missing and why (unreachable, clock off, bad signature); bring those authorities back, or fix the links between them",
  },
  ALLIUM_CERTIFICATE_INVALID: {
    area: 'documents',
    meaning:
      "an authority's signing-key certificate does not parse, is not signed by its identity key, or is outside its validity window",
    remedy:
      "the authority's operator certifies a fresh signing key (protocol.md §6.6); check the clocks of the authority and this machine",
  },
  ALLIUM_VOTE_INVALID: {
    area: 'documents',
    meaning:
      'a vote does not parse, comes from an authority not in the configured set, or names another authority than its certificate',
    remedy: 'check that every authority runs this release with the same authority set file',
  },
  ALLIUM_VOTE_SIGNATURE: {
    area: 'documents',
    meaning: "a vote's signature does not verify with the signing key its certificate names",
    remedy:
      "the vote was altered on its way or signed with another key; the authority's operator should look into it",
  },
  ALLIUM_ENVELOPE_INVALID: {
    area: 'documents',
    meaning: 'a signed document is not a `{ body, signature }` envelope',
    remedy: 'send documents as the relay of this release signs them; see directory-api.md',
  },
  ALLIUM_DESCRIPTOR_INVALID: {
    area: 'documents',
    meaning: "a relay descriptor does not parse, or its id is not its identity key's hash",
    remedy: 'run a relay of this release; see directory-api.md for the fields',
  },
  ALLIUM_DESCRIPTOR_SIGNATURE: {
    area: 'documents',
    meaning: 'a relay descriptor is not signed by the identity key it names',
    remedy: 'run a relay of this release; a descriptor cannot be changed after it is signed',
  },
  ALLIUM_WITHDRAW_INVALID: {
    area: 'documents',
    meaning: 'a withdraw (a relay leaving the consensus) does not parse',
    remedy: 'run a relay of this release; see directory-api.md',
  },
  ALLIUM_WITHDRAW_SIGNATURE: {
    area: 'documents',
    meaning: 'a withdraw is not signed by the listed relay it names',
    remedy: 'only the relay itself can withdraw its listing; nothing to do on the directory',
  },

  // ---- The directory's answers ----
  ALLIUM_RELAY_UNREACHABLE: {
    area: 'directory',
    meaning:
      'the directory could not complete a link handshake with the relay at its advertised address (400; the message says why)',
    remedy: 'open or forward the relay port, pass `--address` with the public IP, or bind `--host 0.0.0.0`',
  },
  ALLIUM_RELAY_ADDRESS_LIMIT: {
    area: 'directory',
    meaning:
      "the relay's address, or the one it registers from, already has the directory's limit of listed relays (403; 2 per public address, 32 per loopback or private one)",
    remedy:
      'run further relays on other addresses; on a test network, start the directory with a larger `--max-relays-per-local-address`',
  },
  ALLIUM_RELAY_VERSION: {
    area: 'directory',
    meaning: 'the directory lists only relays of a newer release than this one (400)',
    remedy: 'upgrade the relay',
  },
  ALLIUM_RELAY_DIRECTORY_KEY: {
    area: 'directory',
    meaning:
      "a relay's `--directory-key` does not verify the directory's consensus; the relay does not start",
    remedy:
      "copy the key from the directory's `ready ... key=` line or status page; a directory whose data dir was wiped has a new key",
  },
  ALLIUM_RELAY_ID_INVALID: {
    area: 'directory',
    meaning: 'a request named a relay id that is not 64 lowercase hex digits (400)',
    remedy: 'use the id as the consensus or the status page shows it',
  },
  ALLIUM_RELAY_NOT_FOUND: {
    area: 'directory',
    meaning: 'the relay named is not listed (404)',
    remedy: 'it left, or its listing expired; a relay registers again by itself',
  },
  ALLIUM_DESCRIPTOR_CLOCK: {
    area: 'directory',
    meaning: "a descriptor's publication time is too far from the directory's clock (400)",
    remedy: 'check the clocks (`timedatectl`) of the relay and the directory',
  },
  ALLIUM_DESCRIPTOR_OUTDATED: {
    area: 'directory',
    meaning:
      'the directory holds a newer descriptor of this relay, or the relay withdrew after signing this one (400)',
    remedy: 'the relay publishes a fresh descriptor on its next refresh; check its clock if this repeats',
  },
  ALLIUM_WITHDRAW_CLOCK: {
    area: 'directory',
    meaning: "a withdraw's publication time is too far from the directory's clock (400)",
    remedy: 'check the clocks (`timedatectl`) of the relay and the directory',
  },
  ALLIUM_WITHDRAW_MISMATCH: {
    area: 'directory',
    meaning: 'a withdraw is signed for another relay than the one in the URL (400)',
    remedy: 'send the withdraw to `/v1/relays/ID` of the relay it names',
  },
  ALLIUM_WITHDRAW_OUTDATED: {
    area: 'directory',
    meaning: "a withdraw predates the relay's current descriptor (400)",
    remedy: 'sign a fresh withdraw',
  },
  ALLIUM_DIRECTORY_FULL: {
    area: 'directory',
    meaning: "the directory's consensus has no room for another relay (503; its 32 MiB budget)",
    remedy:
      "retry later (`Retry-After`); the directory's operator should look for a flood of relays in its log and status page",
  },
  ALLIUM_CONSENSUS_UNAVAILABLE: {
    area: 'directory',
    meaning: 'the directory could not build or sign its consensus (500)',
    remedy:
      "nothing on the client side: the directory's operator reads its log; clients keep their cached consensus",
  },
  ALLIUM_INTERNAL: {
    area: 'directory',
    meaning: 'the directory failed on its own while answering (500)',
    remedy: "nothing on the client side: the directory's operator reads its log",
  },
  ALLIUM_HTTP_TIMEOUT: {
    area: 'directory',
    meaning:
      'a request did not reach the directory in time (408: headers within 10 s, the whole request within 15 s), or an answer did not reach its caller',
    remedy:
      'a very slow link or a stalled client; send requests promptly (dashboard and metrics ports answer 408 the same way)',
  },
  ALLIUM_HTTP_TOO_LARGE: {
    area: 'directory',
    meaning: 'an HTTP body is over its size limit (413 from the directory; or an answer too large to read)',
    remedy: 'send smaller bodies; an answer this large is not from an Allium directory of this release',
  },
  ALLIUM_HTTP_MEDIA_TYPE: {
    area: 'directory',
    meaning: 'a request body was not sent as `application/json` (415)',
    remedy: 'send the body with `Content-Type: application/json`',
  },
  ALLIUM_HTTP_BAD_JSON: {
    area: 'directory',
    meaning: 'a request body is not valid JSON, or has a `__proto__`/`constructor` key (400)',
    remedy: 'send valid JSON without those keys',
  },
  ALLIUM_HTTP_BAD_REQUEST: {
    area: 'directory',
    meaning: 'a request is malformed in another way (400; the message says how)',
    remedy: 'see directory-api.md for the request',
  },
  ALLIUM_HTTP_MALFORMED: {
    area: 'directory',
    meaning: 'bytes that are not HTTP/1.1 reached the directory (400, the connection closes)',
    remedy: 'point HTTP clients at the directory port, and relays or SOCKS clients elsewhere',
  },
  ALLIUM_HTTP_NOT_FOUND: {
    area: 'directory',
    meaning: 'no such endpoint on the directory (404)',
    remedy: 'see directory-api.md for the endpoints',
  },
  ALLIUM_HTTP_RATE_LIMITED: {
    area: 'directory',
    meaning: 'too many requests from one address (429, beyond `--rate-limit` and `--rate-burst`)',
    remedy: 'retry after the `Retry-After` seconds; the directory operator may raise `--rate-limit`',
  },

  // ---- Links between clients and relays ----
  ALLIUM_LINK_CONNECT: {
    area: 'link',
    meaning: 'a TCP connection to a relay failed (refused, no route)',
    remedy: 'a relay that just went away, or a relay address that is wrong; the client retries elsewhere',
  },
  ALLIUM_LINK_TIMEOUT: {
    area: 'link',
    meaning: 'connecting to a relay, or its link handshake, did not finish in time',
    remedy: 'a firewall may drop the connection, or something other than an Allium relay listens there',
  },
  ALLIUM_LINK_IO: {
    area: 'link',
    meaning: 'a socket error during a link handshake',
    remedy: 'usually a relay that went away; nothing to do if rare',
  },
  ALLIUM_LINK_CLOSED: {
    area: 'link',
    meaning: 'the peer closed the link during the handshake, or a link closed before a circuit could use it',
    remedy: 'if the message says the peer may run a release before 0.5.0, upgrade it; else retry',
  },
  ALLIUM_LINK_HANDSHAKE: {
    area: 'link',
    meaning: 'the peer does not speak the Allium link protocol, or its handshake failed',
    remedy: "check that the port is an Allium relay's own",
  },
  ALLIUM_LINK_VERSION: {
    area: 'link',
    meaning: 'the peer speaks another version of the link protocol (another release)',
    remedy: 'run the same release on both ends; the message names both versions',
  },
  ALLIUM_LINK_IDENTITY: {
    area: 'link',
    meaning:
      'a relay proved another identity than the one expected, or its link certificate is bad (one of 96 bytes is from a release before 0.5.0)',
    remedy:
      'another relay answers at that address (a moved relay, a stale consensus: the next consensus fixes it); an old certificate: upgrade that relay',
  },
  ALLIUM_LINK_CERT_EXPIRED: {
    area: 'link',
    meaning: "a relay presented a link certificate that has expired by this machine's clock",
    remedy: 'check the clocks (`timedatectl`) of both machines',
  },
  ALLIUM_LINK_EXPIRED: {
    area: 'link',
    meaning: 'a link reached the expiry of a certificate of its handshake and closed, with its circuits',
    remedy: 'nothing: relays rotate their link key weekly, and the next link uses the new one',
  },
  ALLIUM_LINK_DEAD: {
    area: 'link',
    meaning: 'nothing arrived from the peer for too long (keepalives included); the link closed',
    remedy: 'a peer that froze or a network that dropped the connection; nothing to do if rare',
  },
  ALLIUM_LINK_STALLED: {
    area: 'link',
    meaning: 'the peer stopped reading: its socket took nothing for `--link-stall-timeout`; the link closed',
    remedy: 'a frozen or overloaded peer; nothing to do if rare',
  },
  ALLIUM_LINK_QUEUE: {
    area: 'link',
    meaning:
      "a link's queue passed four times `--max-link-queue` (the peer stopped reading; past `--max-link-queue` its circuits with the most queued are closed first); the link closed",
    remedy:
      'a frozen or overloaded peer; nothing to do if rare, else look for a client that opens many circuits and does not read',
  },
  ALLIUM_RELAY_QUEUE_FULL: {
    area: 'link',
    meaning:
      'all queues of a relay together passed `--max-total-queue`; the link with the most queued was closed with its circuits',
    remedy: 'raise `--max-total-queue` if the machine has the memory; nothing to do if rare',
  },
  ALLIUM_LINK_FRAME: {
    area: 'link',
    meaning: 'the peer sent a link frame that does not decrypt or parse; the link closed',
    remedy: 'a peer of another release, or a tampered connection; nothing to do if rare',
  },
  ALLIUM_LINK_BUSY: {
    area: 'link',
    meaning: 'a relay refused a connection: `--max-pending-handshakes` link handshakes were in progress',
    remedy: 'a flood of connections; raise `--max-pending-handshakes` if the relay has the CPU',
  },
  ALLIUM_NOISE_DECRYPT: {
    area: 'link',
    meaning: 'a Noise handshake message or link frame failed authentication',
    remedy: 'a tampered connection or a peer of another release; the link is refused',
  },
  ALLIUM_NOISE_STATE: {
    area: 'link',
    meaning: "a Noise handshake object was used out of turn (a bug, not a peer's doing)",
    remedy: 'report it with the log',
  },

  // ---- Circuits, handshakes and cells ----
  ALLIUM_CIRCUIT_ENTRY: {
    area: 'circuit',
    meaning: 'the client cannot connect to the entry relay of a new circuit',
    remedy:
      "usually a relay that just went away; the client retries on another circuit; persistent: the relays' addresses are wrong",
  },
  ALLIUM_CIRCUIT_PROTOCOL: {
    area: 'circuit',
    meaning:
      'a relay on the circuit broke the circuit protocol (an unexpected CREATED or EXTENDED, stream cells from a middle hop)',
    remedy: 'the circuit is closed and the client builds another; nothing to do if rare',
  },
  ALLIUM_CIRCUIT_DESTROYED: {
    area: 'circuit',
    meaning:
      'a circuit was destroyed (by a relay, a changed cell, or the client) while in use; its streams failed',
    remedy: 'a relay on the path went away or misbehaved; the client builds another circuit',
  },
  ALLIUM_CIRCUIT_TIMEOUT: {
    area: 'circuit',
    meaning: 'the last relay of a circuit did not answer an onion service request in time',
    remedy: 'nothing: another relay (store, introduction or rendezvous point) is tried',
  },
  ALLIUM_CIRCUIT_CLOSED: {
    area: 'circuit',
    meaning: 'a stream was opened on a circuit that had already closed',
    remedy: 'open it again: the client picks an open circuit',
  },
  ALLIUM_HANDSHAKE_AUTH: {
    area: 'circuit',
    meaning: "a circuit handshake's proof did not verify (or a shared secret was all zeros)",
    remedy:
      'a relay that does not hold the onion key the consensus names, or a tampered cell; the circuit is not built',
  },
  ALLIUM_HANDSHAKE_MALFORMED: {
    area: 'circuit',
    meaning:
      'a circuit handshake message has the wrong length, names another relay or key, or holds a bad point',
    remedy: 'a peer of another release, or a tampered cell; the circuit is not built',
  },
  ALLIUM_HANDSHAKE_TYPE: {
    area: 'circuit',
    meaning:
      'a relay refused a CREATE of an unknown handshake type, or a link-bound CREATE from another relay',
    remedy: 'nothing at the relay: the sender runs another release or misbehaves',
  },
  ALLIUM_HANDSHAKE_REPEATED: {
    area: 'circuit',
    meaning: 'a relay refused a link-bound CREATE that repeated a key already used on the link',
    remedy: 'nothing at the relay: the sender replays cells',
  },
  ALLIUM_HANDSHAKE: {
    area: 'circuit',
    meaning: "a relay's handshake worker refused a CREATE (the message says why)",
    remedy: 'nothing at the relay; the circuit is refused',
  },
  ALLIUM_HANDSHAKE_WORKER: {
    area: 'circuit',
    meaning: "a relay's handshake worker thread failed; the CREATEs it held were refused",
    remedy: "read the relay's log; `--handshake-threads 0` answers handshakes on the main thread",
  },
  ALLIUM_HANDSHAKE_POOL_CLOSED: {
    area: 'circuit',
    meaning: 'a CREATE arrived while the relay was stopping',
    remedy: 'nothing: the client builds its circuit elsewhere',
  },
  ALLIUM_KEY_DH: {
    area: 'circuit',
    meaning: "an X25519 exchange with the peer's key failed (a low-order or malformed point)",
    remedy: 'a peer of another release, or a hostile one; the handshake is refused',
  },
  ALLIUM_KEY_LENGTH: {
    area: 'circuit',
    meaning: 'a key of the wrong length was given (a bug, or a key file or option of the wrong size)',
    remedy: 'check keys given as options are 32 bytes in base64; else report it with the log',
  },
  ALLIUM_KEY_EXPORT: {
    area: 'circuit',
    meaning: "Node's crypto could not export a public key (a bug, not a peer's doing)",
    remedy: 'report it with the Node version',
  },
  ALLIUM_CRYPTO_ARGUMENT: {
    area: 'circuit',
    meaning: "bytes of the wrong size reached a crypto function (a bug, not a peer's doing)",
    remedy: 'report it with the log',
  },
  ALLIUM_FLOW_WINDOW: {
    area: 'circuit',
    meaning:
      'the peer sent more DATA cells than the circuit or stream window allows; the circuit is destroyed',
    remedy: 'a peer of another release, or a hostile one; nothing to do',
  },
  ALLIUM_FLOW_SENDME: {
    area: 'circuit',
    meaning: 'the peer sent a SENDME with an unexpected tag, or beyond the window; the circuit is destroyed',
    remedy: 'a peer of another release, or a hostile one; nothing to do',
  },
  ALLIUM_FLOW_BUDGET: {
    area: 'circuit',
    meaning: "a receive budget smaller than one circuit window was asked for (an option's value)",
    remedy: 'give `--receive-budget` (or `receiveBudgetCells`) at least its minimum',
  },
  ALLIUM_WIRE_MALFORMED: {
    area: 'circuit',
    meaning: 'bytes from the network do not parse as the cell, message or SOCKS request they should be',
    remedy: 'a peer of another release, or a tampered connection; the circuit or link is closed',
  },
  ALLIUM_WIRE_TOO_LARGE: {
    area: 'circuit',
    meaning: 'a value does not fit its field (a host name over 255 bytes, too much data for one cell)',
    remedy: 'shorten what the message names; from the network: a peer of another release',
  },

  // ---- Choosing a path ----
  ALLIUM_CLIENT_NO_CONSENSUS: {
    area: 'path',
    meaning: 'the client has no usable consensus (none yet, or the last one expired and no newer came)',
    remedy: 'start the directory, check `--directory` and the clocks; no new circuits until it answers',
  },
  ALLIUM_CLIENT_TOO_FEW_RELAYS: {
    area: 'path',
    meaning:
      'the consensus lists fewer relays than a circuit needs, or no exit; the client said at once that it waits, and gave up after 30 s',
    remedy:
      'start more relays (at least 3, one with `--exit`), wait for them to register, or ask for shorter circuits (`--path-length`, at least 3)',
  },
  ALLIUM_CLIENT_CLOSED: {
    area: 'path',
    meaning: 'a circuit or stream was asked of a client that is closed',
    remedy: 'make a new client',
  },
  ALLIUM_PATH_NO_EXIT: {
    area: 'path',
    meaning:
      "no exit's policy allows the destination (SOCKS reply 2, HTTP proxy 403); exits refuse loopback and private addresses unless run with `--allow-private`",
    remedy:
      'pick a destination the exits allow, or start an exit that allows it (testnets allow loopback); the client fetches the consensus again at once',
  },
  ALLIUM_PATH_NO_GUARD: {
    area: 'path',
    meaning:
      "none of the client's entry guards (`guards.json`) is running, or none can be combined with an exit",
    remedy:
      'wait for the guards to return (a guard that just failed is skipped for 60 s); to choose new ones, stop the client and delete `guards.json`',
  },
  ALLIUM_PATH_TOO_FEW: {
    area: 'path',
    meaning: 'the consensus has fewer running relays of a usable release than the path needs',
    remedy: 'start more relays, upgrade old ones, or ask for shorter circuits (`--path-length`, at least 3)',
  },
  ALLIUM_PATH_DIVERSITY: {
    area: 'path',
    meaning: 'not enough running relays in distinct /16 (IPv4) or /32 (IPv6) subnets and families for a path',
    remedy:
      'run relays on more networks (the rule is off when every relay sits in one subnet, as on a test network)',
  },
  ALLIUM_PATH_LENGTH: {
    area: 'path',
    meaning: 'a path of no relays was asked for (a bug, not an option: options ask for at least 3)',
    remedy: 'report it with the log',
  },

  // ---- Streams and exits ----
  ALLIUM_STREAM_REFUSED: {
    area: 'stream',
    meaning:
      'the exit answered that it could not open the stream: refused (SOCKS reply 5, HTTP proxy 502), no such host (SOCKS 4), policy (SOCKS 2, HTTP 403), timed out (SOCKS 6, HTTP 504)',
    remedy: 'check the destination: the message says why, and the request did leave the network',
  },
  ALLIUM_STREAM_TIMEOUT: {
    area: 'stream',
    meaning:
      'the exit did not answer a stream request within 15 s, three times, each on a fresh circuit (SOCKS reply 6, HTTP proxy 504; the HTTP proxy sends a request again only if it has no body, `allium fetch` gives up after the first)',
    remedy: "a relay on the path is down or cut off; if it persists, check the relays and the exits' DNS",
  },
  ALLIUM_STREAM_END: {
    area: 'stream',
    meaning: 'the other end closed the stream with an error (the message has the END reason)',
    remedy: 'the destination or the exit dropped the connection; retry',
  },
  ALLIUM_STREAM_CLOSED: {
    area: 'stream',
    meaning: 'a stream was closed before the exit had connected it',
    remedy: 'nothing: the program that opened it closed it',
  },
  ALLIUM_CONNECT_FAILED: {
    area: 'stream',
    meaning: 'a stream could not be opened and no more specific reason is known',
    remedy: 'retry; the debug log has the circuits tried',
  },
  ALLIUM_EXIT_POLICY: {
    area: 'stream',
    meaning: "the exit's policy refuses the destination (sent to the client as END reason EXITPOLICY)",
    remedy: 'at the client this is `ALLIUM_STREAM_REFUSED`; the exit operator may widen `--exit-policy`',
  },
  ALLIUM_EXIT_RESOLVE: {
    area: 'stream',
    meaning: 'the exit could not resolve the host name',
    remedy: 'check the name; the exit operator may check `--dns-server` and its DNS',
  },
  ALLIUM_EXIT_TIMEOUT: {
    area: 'stream',
    meaning: 'the exit timed out resolving or connecting to the destination',
    remedy: 'the destination is slow or drops packets; check it',
  },
  ALLIUM_EXIT_CONNECT: {
    area: 'stream',
    meaning: 'the exit could not connect to the destination (refused, no route, reset)',
    remedy: 'check that something listens at the destination',
  },
  ALLIUM_EXIT_DNS_BUSY: {
    area: 'stream',
    meaning:
      'the exit refused a lookup: `--max-dns-lookups` or `--max-dns-lookups-per-circuit` were in progress',
    remedy: 'retry; the exit operator may raise those limits',
  },
  ALLIUM_EXIT_BUFFER_FULL: {
    area: 'stream',
    meaning:
      'the exit closed the stream that held the most for a destination that does not read (`--max-exit-buffer`)',
    remedy: 'a destination that stopped reading; the exit operator may raise `--max-exit-buffer`',
  },
  ALLIUM_EXIT_RESET: {
    area: 'stream',
    meaning: 'the destination reset its connection at the exit',
    remedy: 'the destination dropped the connection; retry',
  },
  ALLIUM_EXIT_FAILED: {
    area: 'stream',
    meaning: "the exit's connection to the destination failed (the message says how)",
    remedy: 'the destination dropped the connection; retry',
  },
  ALLIUM_EXIT_DRAIN_STALLED: {
    area: 'stream',
    meaning: 'after the client ended a stream, the destination neither read nor answered; the exit reset it',
    remedy: 'nothing: a destination that stopped reading',
  },

  // ---- Onion services ----
  ALLIUM_ONION_ADDRESS: {
    area: 'onion',
    meaning:
      'a `.allium` address is malformed: not 56 letters a-z and digits 2-7 before `.allium`, or not base32',
    remedy: 'copy the whole address the service printed at start (56 characters, then `.allium`)',
  },
  ALLIUM_ONION_ADDRESS_CHECKSUM: {
    area: 'onion',
    meaning: "a `.allium` address's checksum does not match its key: a character was mistyped or lost",
    remedy: 'copy the address again from the service; one changed character makes another address',
  },
  ALLIUM_ONION_ADDRESS_VERSION: {
    area: 'onion',
    meaning: 'a `.allium` address names an address version this release does not know',
    remedy: 'upgrade Allium, or ask the service for an address of version 1',
  },
  ALLIUM_ONION_ADDRESS_KEY: {
    area: 'onion',
    meaning: 'a `.allium` address has a valid checksum but its key is not a usable Ed25519 public key',
    remedy: 'the address was made by hand or by broken software; ask the service for its address again',
  },
  ALLIUM_ONION_DESCRIPTOR_SIGNATURE: {
    area: 'onion',
    meaning: "an onion service descriptor's signature does not verify under the key it names",
    remedy: 'a tampered or forged descriptor; it is refused and the next store is asked',
  },
  ALLIUM_ONION_DESCRIPTOR_KEY: {
    area: 'onion',
    meaning: 'a store answered with a descriptor for another blinded key than the one asked for',
    remedy: 'a misbehaving store; the client asks the next one',
  },
  ALLIUM_ONION_DESCRIPTOR_EXPIRED: {
    area: 'onion',
    meaning:
      'an onion service descriptor has expired, or claims to live longer than descriptors may (3 hours)',
    remedy: "check this machine's clock; a running service publishes a fresh descriptor every hour",
  },
  ALLIUM_ONION_DESCRIPTOR_DECRYPT: {
    area: 'onion',
    meaning:
      "an onion service descriptor's inner layer does not decrypt for this address and period (tampered, or another service)",
    remedy: 'a tampered descriptor; the client asks the next store',
  },
  ALLIUM_ONION_DESCRIPTOR_MALFORMED: {
    area: 'onion',
    meaning:
      'a store answered with bytes that do not parse as an onion service descriptor (its layout, or its inner layer)',
    remedy: 'a misbehaving store, or a service of a later descriptor version; the client asks the next store',
  },
  ALLIUM_ONION_ESTABLISH_INTRO_AUTH: {
    area: 'onion',
    meaning:
      'an ESTABLISH_INTRO was not signed by the key it names, or was made for another circuit; the introduction point refuses it',
    remedy: 'a service of another release, or a replayed message; nothing to do at the relay',
  },
  ALLIUM_ONION_INTRODUCE_AUTH: {
    area: 'onion',
    meaning:
      "an INTRODUCE2 failed its MAC or carried an unusable key: not made by a client that read the service's descriptor",
    remedy: 'a forged or changed introduction; the service drops it',
  },
  ALLIUM_ONION_INTRODUCE_REPLAY: {
    area: 'onion',
    meaning:
      'an INTRODUCE2 repeated the key of one the service already answered through that introduction point',
    remedy: 'a replay (by the introduction point or someone who recorded it); the service drops it',
  },
  ALLIUM_ONION_INTRO_EXHAUSTED: {
    area: 'onion',
    meaning: 'an introduction point has taken all the introductions its replay cache can hold',
    remedy: 'nothing: the service replaces that introduction point and publishes a new descriptor',
  },
  ALLIUM_ONION_RENDEZVOUS_AUTH: {
    area: 'onion',
    meaning:
      "the service's answer at the rendezvous point did not prove the key of its descriptor (or held an unusable key)",
    remedy:
      'a relay on the path forged or changed the answer; the client tries again with a new rendezvous point',
  },

  ALLIUM_ONION_NO_RING: {
    area: 'onion',
    meaning:
      "the consensus carries no onion-service fields for this period (the directory's release predates onion services)",
    remedy: 'upgrade the directory (or every authority) to a release that publishes them',
  },
  ALLIUM_ONION_DESCRIPTOR_NOT_FOUND: {
    area: 'onion',
    meaning: 'no store held a descriptor for this address: no such service, or it has not published (yet)',
    remedy:
      'check the address; a service just started needs a minute to publish; a stopped one disappears within hours',
  },
  ALLIUM_ONION_SERVICE_UNREACHABLE: {
    area: 'onion',
    meaning:
      "none of the service's introduction points took the introduction: the service is down or has moved on",
    remedy: 'the service is likely down; retry later, when it has published a fresh descriptor',
  },
  ALLIUM_ONION_RENDEZVOUS_FAILED: {
    area: 'onion',
    meaning: 'the circuit to the rendezvous point failed before the service came',
    remedy: 'retry: a new rendezvous point is chosen',
  },
  ALLIUM_ONION_INTRODUCE_TIMEOUT: {
    area: 'onion',
    meaning: 'the introduction was passed on, but the service did not come to the rendezvous point in time',
    remedy: 'the service is overloaded or failing; retry later',
  },
  ALLIUM_ONION_CONNECT_TIMEOUT: {
    area: 'onion',
    meaning:
      'reaching the onion service took longer than allowed in all (2 minutes by default): stores, rendezvous and introduction points were slow or silent',
    remedy: 'the network or the service is overloaded or failing; retry later',
  },
  ALLIUM_SERVICE_BUFFER_FULL: {
    area: 'stream',
    meaning:
      'the onion service closed the stream that held the most for a local server that does not read (`--max-buffer`)',
    remedy: 'a local server that stopped reading; the service operator may raise `--max-buffer`',
  },
  ALLIUM_SERVICE_TARGET: {
    area: 'onion',
    meaning: 'the local address an onion service forwards to (`--to`) is not a valid host:port',
    remedy: 'give `--to 127.0.0.1:8080` (host and port of the local server to publish)',
  },
  ALLIUM_SERVICE_INTRO: {
    area: 'onion',
    meaning: 'an onion service could not bring up any introduction point (no relay took ESTABLISH_INTRO)',
    remedy: 'check that the network has relays besides your guards; the service keeps trying',
  },
  ALLIUM_SERVICE_PUBLISH: {
    area: 'onion',
    meaning:
      "an onion service's descriptor was not stored at any store of some replica of the ring: clients may not find it",
    remedy: 'the stores are down or refused it; the service tries again at its next republish',
  },
  ALLIUM_SERVICE_KEY: {
    area: 'onion',
    meaning: "the onion service's key file is unreadable, the wrong size, or readable by others",
    remedy:
      'restore the key from a backup (it IS the address), or `chmod 600` it; delete it only to take a new address',
  },

  // ---- `allium fetch` and the library ----
  ALLIUM_FETCH_URL: {
    area: 'fetch',
    meaning: 'the URL is not valid, or not http/https (also a redirect to such a URL)',
    remedy: 'give an `http://` or `https://` URL',
  },
  ALLIUM_FETCH_TLS: {
    area: 'fetch',
    meaning: "the HTTPS server's certificate is not trusted or does not match",
    remedy: 'for a private CA pass `--cacert FILE` (fetch) or `ca` (library); curl: `--cacert`',
  },
  ALLIUM_FETCH_FAILED: {
    area: 'fetch',
    meaning: 'the request failed after its stream opened (the connection dropped, the answer was not HTTP)',
    remedy: 'retry; check the server',
  },
  ALLIUM_FETCH_TIMEOUT: {
    area: 'fetch',
    meaning: 'the server sent no response headers in time',
    remedy: 'check the server: it may be down or overloaded',
  },
  ALLIUM_FETCH_REDIRECTS: {
    area: 'fetch',
    meaning: 'more redirects than allowed (a loop, most likely)',
    remedy: 'fetch the final URL directly, or fix the redirect loop on the server',
  },
  ALLIUM_FETCH_REDIRECT_BODY: {
    area: 'fetch',
    meaning: 'a redirect asked to send a streamed request body again, which cannot be replayed',
    remedy: 'send the body as a buffer or string, or post to the final URL',
  },
  ALLIUM_FETCH_REDIRECT_REFUSED: {
    area: 'fetch',
    meaning: 'the server redirected a request made with `redirect: "error"`',
    remedy: 'fetch the `Location` directly, or use `redirect: "follow"` or `"manual"`',
  },

  // ---- Test networks and their SOCKS client ----
  ALLIUM_TESTNET_RELAYS: {
    area: 'testnet',
    meaning: 'a testnet was asked for fewer than 3 relays, or more than 254 with `--link-delay`',
    remedy: 'use `--relays` from 3 (to 254 with `--link-delay`)',
  },
  ALLIUM_TESTNET_TIMEOUT: {
    area: 'testnet',
    meaning: 'a process of the testnet did not become ready in time (its last output is in the message)',
    remedy: 'read its output; on a loaded machine start fewer relays',
  },
  ALLIUM_TESTNET_EXIT: {
    area: 'testnet',
    meaning: 'a process of the testnet exited before it was ready (its last output is in the message)',
    remedy: 'read its output: the cause is its own error',
  },
  ALLIUM_SOCKS_TIMEOUT: {
    area: 'testnet',
    meaning: 'the SOCKS proxy did not answer in time',
    remedy: 'check that the client runs and its `--socks` address',
  },
  ALLIUM_SOCKS_IO: {
    area: 'testnet',
    meaning: 'the connection to the SOCKS proxy failed',
    remedy: 'check that the client runs and its `--socks` address',
  },
  ALLIUM_SOCKS_METHOD: {
    area: 'testnet',
    meaning: 'the SOCKS proxy refused the authentication method offered',
    remedy: 'check that the address is an Allium SOCKS port',
  },
  ALLIUM_SOCKS_AUTH: {
    area: 'testnet',
    meaning: 'the SOCKS proxy refused the credentials',
    remedy:
      'Allium accepts any credentials (it uses them for isolation): check the address is an Allium SOCKS port',
  },
  ALLIUM_SOCKS_REPLY: {
    area: 'testnet',
    meaning: 'the SOCKS proxy answered with a failure (the reply number is on the error)',
    remedy:
      'see `ALLIUM_STREAM_REFUSED`, `ALLIUM_PATH_NO_EXIT` and `ALLIUM_STREAM_TIMEOUT` for the reply numbers',
  },
} as const satisfies Record<`ALLIUM_${string}`, ErrorCodeEntry>;

/** Every stable code Allium raises: the type of `AlliumError.code`. */
export type AlliumCode = keyof typeof ERROR_CATALOGUE;

type ShortName<C extends string> = C extends `ALLIUM_${infer S}` ? S : never;

/** Every code as a constant by its short name: `ErrorCode.LINK_QUEUE === 'ALLIUM_LINK_QUEUE'`. */
export const ErrorCode = Object.freeze(
  Object.fromEntries(Object.keys(ERROR_CATALOGUE).map((c) => [c.slice('ALLIUM_'.length), c])),
) as { readonly [C in AlliumCode as ShortName<C>]: C };

/** Whether `s` is a code of the catalogue (for codes that arrive from elsewhere, e.g. a directory's answer). */
export function isAlliumCode(s: unknown): s is AlliumCode {
  return typeof s === 'string' && Object.hasOwn(ERROR_CATALOGUE, s);
}
