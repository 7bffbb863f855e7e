// Implements docs/protocol.md §4.1 (EXTEND) at a relay: checks where an EXTEND leads, finds or opens
// the link to that relay (proving its identity), and hands the circuit on to the cell handling,
// which sends CREATE there (or TRUNCATED back when the link cannot be had).

import type { RelayCells } from '../core/relay-cells.js';
import type { RelayCircuit } from '../core/relay-circuit.js';
import { extendTarget } from '../core/relay-extend.js';
import type { AlliumError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Link } from '../net/link.js';
import { DestroyReason, RelayCommand } from '../wire/constants.js';
import { encodeTruncated } from '../wire/relay-messages.js';
import type { LinkTable } from './link-table.js';

export interface ExtendContext {
  cells: RelayCells<Link>;
  links: LinkTable;
  /** This relay's id and the address it advertises. */
  id: Buffer;
  address: string;
  log: Logger;
  /** Log why an extend failed in full (it may name an address). */
  logSensitive: boolean;
}

/** An EXTEND the circuit may make (the cell handling checked its place in the protocol). */
export function extendCircuit(ctx: ExtendContext, circ: RelayCircuit, data: Buffer): void {
  const req = extendTarget(data, ctx);
  if (!req) {
    ctx.cells.table.sendBackward(circ, RelayCommand.TRUNCATED, 0, encodeTruncated(DestroyReason.PROTOCOL));
    return;
  }
  circ.extending = true;
  ctx.links.linkTo(req.relayId, req.address, req.port).then(
    (link) => ctx.cells.extendTo(circ, link, req.htype, req.hdata),
    (err) => {
      if (circ.closed) return;
      const code = (err as AlliumError).code;
      ctx.log.info({ code, err: ctx.logSensitive ? err.message : undefined }, 'extend failed');
      const reason =
        code === 'ALLIUM_LINK_IDENTITY' || code === 'ALLIUM_LINK_CERT_EXPIRED'
          ? DestroyReason.OR_IDENTITY
          : DestroyReason.CONNECTFAILED;
      ctx.cells.extendFailed(circ, reason);
    },
  );
}
