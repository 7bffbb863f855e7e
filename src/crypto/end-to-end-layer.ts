// Implements docs/protocol.md §8.7 (the end-to-end layer): each end of a rendezvous treats the other
// as one more hop past the rendezvous point, with the forward layer of §3.4 keyed from hs-ntor. The
// relays' layers run underneath unchanged; only the two ends hold these keys.
import { ForwardLayer } from './forward-onion.js';
import type { EndToEndKeys } from './hs-ntor.js';

/** One end's layers: `send` wraps as the last hop of its own circuit, `receive` opens the other's. */
export interface EndToEndLayers {
  send: ForwardLayer;
  receive: ForwardLayer;
}

/**
 * The client sends under (kf, mf) and opens under (kb, mb); the service the other way round, so each
 * direction has keys of its own and one keystream never serves two directions.
 */
export function endToEndLayers(keys: EndToEndKeys, side: 'client' | 'service'): EndToEndLayers {
  const toService = () => new ForwardLayer(keys.kf, keys.mf);
  const toClient = () => new ForwardLayer(keys.kb, keys.mb);
  return side === 'client'
    ? { send: toService(), receive: toClient() }
    : { send: toClient(), receive: toService() };
}
