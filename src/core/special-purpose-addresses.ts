// Implements docs/protocol.md §7 (the destinations an exit refuses): the one list both what an exit
// enforces (exit-policy.ts) and what it publishes (relay/private-ranges.ts) are made from.
//
// Taken from the IANA IPv4 and IPv6 Special-Purpose Address Registries: every block whose "Globally
// Reachable" is False, plus multicast and the deprecated site-local block, which those registries do
// not list. 192.0.0.0/24 and 2001::/23 are refused whole although the registries mark a few anycast
// addresses inside them reachable (PCP, TURN, AMT, AS112): they are infrastructure, not destinations.
// Blocks whose packets reach the exit's own host or site are `local`: a relay on a public address
// also refuses to extend circuits to those (relay.ts).

export interface SpecialPurposeBlock {
  /** The block in CIDR notation. */
  cidr: string;
  /** What the registry calls it. */
  name: string;
  /** Reaches the host itself or its site (private, loopback, link-local, multicast...). */
  local: boolean;
}

export const SPECIAL_PURPOSE_V4: readonly SpecialPurposeBlock[] = [
  { cidr: '0.0.0.0/8', name: '"this network" (0.0.0.0 reaches the host itself)', local: true },
  { cidr: '10.0.0.0/8', name: 'private use', local: true },
  { cidr: '100.64.0.0/10', name: 'shared address space (carrier-grade NAT, Tailscale)', local: true },
  { cidr: '127.0.0.0/8', name: 'loopback', local: true },
  { cidr: '169.254.0.0/16', name: 'link local (cloud metadata services)', local: true },
  { cidr: '172.16.0.0/12', name: 'private use', local: true },
  { cidr: '192.0.0.0/24', name: 'IETF protocol assignments', local: false },
  { cidr: '192.0.2.0/24', name: 'documentation (TEST-NET-1)', local: false },
  { cidr: '192.168.0.0/16', name: 'private use', local: true },
  { cidr: '198.18.0.0/15', name: 'benchmarking', local: false },
  { cidr: '198.51.100.0/24', name: 'documentation (TEST-NET-2)', local: false },
  { cidr: '203.0.113.0/24', name: 'documentation (TEST-NET-3)', local: false },
  { cidr: '224.0.0.0/4', name: 'multicast', local: true },
  { cidr: '240.0.0.0/4', name: 'reserved', local: false },
  { cidr: '255.255.255.255/32', name: 'limited broadcast', local: true },
];

export const SPECIAL_PURPOSE_V6: readonly SpecialPurposeBlock[] = [
  { cidr: '::/128', name: 'unspecified', local: true },
  { cidr: '::1/128', name: 'loopback', local: true },
  { cidr: '64:ff9b:1::/48', name: 'IPv4-IPv6 translation, local use', local: true },
  { cidr: '100::/64', name: 'discard-only', local: false },
  { cidr: '100:0:0:1::/64', name: 'dummy prefix', local: false },
  { cidr: '2001::/23', name: 'IETF protocol assignments (Teredo, ORCHID, benchmarking)', local: false },
  { cidr: '2001:db8::/32', name: 'documentation', local: false },
  { cidr: '3fff::/20', name: 'documentation', local: false },
  { cidr: '5f00::/16', name: 'segment routing (SRv6) SIDs', local: false },
  { cidr: 'fc00::/7', name: 'unique local', local: true },
  { cidr: 'fe80::/10', name: 'link-local unicast', local: true },
  { cidr: 'fec0::/10', name: 'site-local (deprecated)', local: true },
  { cidr: 'ff00::/8', name: 'multicast', local: true },
];

/**
 * The well-known NAT64 prefix (64:ff9b::/96) reaches the IPv4 address in its last 32 bits, so each
 * IPv4 block above is refused in this form too. (IPv4-mapped addresses, ::ffff:0:0/96, are judged
 * as the IPv4 address they carry and need no entry.)
 */
export const NAT64_PREFIX = '64:ff9b::';
