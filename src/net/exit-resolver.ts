// Implements docs/protocol.md §4.2 at the exit (names are resolved at the exit, never at the client)
// and the DNS limits of docs/threat-model.md §2.13. Queries go out through c-ares (node:dns Resolver),
// which waits on sockets, not on libuv's four worker threads as dns.lookup does: a name whose DNS never
// answers costs one entry in a bounded table until its own timeout, and never blocks other lookups.
import { promises as dnsPromises, getServers } from 'node:dns';
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { StreamError } from '../core/stream-mux.js';
import { AlliumError } from '../errors.js';
import { EndReason } from '../wire/constants.js';

export interface ResolvedAddress {
  address: string;
  family: number;
}

export interface ExitResolverOptions {
  /** DNS servers (`IP`, `IP:PORT`, `[IPv6]:PORT`); default the system's (/etc/resolv.conf). */
  servers?: string[];
  /** How long one lookup may take in all, ms (two tries per server). */
  timeoutMs: number;
  /** Lookups in progress at once, all circuits together; more are refused at once. */
  maxLookups: number;
  /** Lookups in progress at once for one circuit; more are refused at once. */
  maxLookupsPerCircuit: number;
  /** Names answered locally before any query (default /etc/hosts). */
  hostsFile?: string;
}

/** The hosts file is read again at most this often (a stat per lookup would use the thread pool too). */
const HOSTS_RECHECK_MS = 30_000;

/** Parses a hosts file: name (lower case) -> addresses, IPv4 first, in file order. */
export function parseHosts(text: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') continue;
    const [address, ...names] = line.split(/\s+/);
    if (isIP(address) === 0) continue;
    for (const name of names) {
      const key = name.toLowerCase();
      const list = map.get(key) ?? [];
      if (!list.includes(address)) list.push(address);
      map.set(key, list);
    }
  }
  for (const list of map.values()) list.sort((a, b) => isIP(a) - isIP(b));
  return map;
}

export class ExitResolver {
  private readonly resolver: dnsPromises.Resolver;
  private inFlight = 0;
  private readonly perCircuit = new Map<object, number>();
  private hosts = new Map<string, string[]>();
  private hostsReadAt = Number.NEGATIVE_INFINITY;
  private hostsMtimeMs = -1;
  /** Lookups refused because a limit was reached (for the relay's limit counter). */
  refused = 0;

  constructor(private readonly opts: ExitResolverOptions) {
    // c-ares doubles the wait on its second try: t + 2t for two tries.
    const perTry = Math.max(100, Math.ceil(opts.timeoutMs / 3));
    this.resolver = new dnsPromises.Resolver({ timeout: perTry, tries: 2 });
    const servers = opts.servers && opts.servers.length > 0 ? opts.servers : getServers();
    try {
      this.resolver.setServers(servers);
    } catch (err) {
      throw new AlliumError(
        'ALLIUM_RELAY_OPTIONS',
        `--dns-server: ${(err as Error).message} (expected IP, IP:PORT or [IPv6]:PORT, comma-separated)`,
      );
    }
    this.readHosts();
  }

  /** Lookups in progress now (all circuits). */
  get pending(): number {
    return this.inFlight;
  }

  /**
   * The addresses of `host` (IPv4 first), for a stream of `circuit`. Throws StreamError RESOURCELIMIT
   * when the circuit or the relay has too many lookups in progress; any other failure is an Error the
   * exit reports as RESOLVEFAILED.
   */
  async lookup(host: string, circuit: object): Promise<ResolvedAddress[]> {
    const name = host.toLowerCase().replace(/\.$/, '');
    const local = this.localAnswer(name);
    if (local) return local;
    const mine = this.perCircuit.get(circuit) ?? 0;
    if (this.inFlight >= this.opts.maxLookups || mine >= this.opts.maxLookupsPerCircuit) {
      this.refused++;
      throw new StreamError(
        'ALLIUM_EXIT_DNS_BUSY',
        this.inFlight >= this.opts.maxLookups
          ? `${this.inFlight} DNS lookups in progress (--max-dns-lookups)`
          : `this circuit has ${mine} DNS lookups in progress (--max-dns-lookups-per-circuit)`,
        EndReason.RESOURCELIMIT,
      );
    }
    this.inFlight++;
    this.perCircuit.set(circuit, mine + 1);
    try {
      // Both settle within c-ares's own timeout, so the slot is held no longer than that.
      const [v4, v6] = await Promise.allSettled([this.resolver.resolve4(name), this.resolver.resolve6(name)]);
      const out: ResolvedAddress[] = [];
      if (v4.status === 'fulfilled') for (const address of v4.value) out.push({ address, family: 4 });
      if (v6.status === 'fulfilled') for (const address of v6.value) out.push({ address, family: 6 });
      if (out.length === 0 && v4.status === 'rejected') throw v4.reason;
      return out;
    } finally {
      this.inFlight--;
      const left = (this.perCircuit.get(circuit) ?? 1) - 1;
      if (left <= 0) this.perCircuit.delete(circuit);
      else this.perCircuit.set(circuit, left);
    }
  }

  /** `localhost` and its subdomains (RFC 6761), and hosts-file names, answered without a query. */
  private localAnswer(name: string): ResolvedAddress[] | null {
    this.readHosts();
    const listed = this.hosts.get(name);
    if (listed) return listed.map((address) => ({ address, family: isIP(address) }));
    if (name === 'localhost' || name.endsWith('.localhost')) {
      return [
        { address: '127.0.0.1', family: 4 },
        { address: '::1', family: 6 },
      ];
    }
    return null;
  }

  private readHosts(): void {
    const now = performance.now();
    if (now - this.hostsReadAt < HOSTS_RECHECK_MS) return;
    this.hostsReadAt = now;
    const file = this.opts.hostsFile ?? '/etc/hosts';
    try {
      const mtime = statSync(file).mtimeMs;
      if (mtime === this.hostsMtimeMs) return;
      this.hosts = parseHosts(readFileSync(file, 'utf8'));
      this.hostsMtimeMs = mtime;
    } catch {
      this.hosts = new Map();
    }
  }
}
