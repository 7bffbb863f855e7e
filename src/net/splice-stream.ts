// Joins a proxy client's socket to its circuit stream once the proxy has answered (the SOCKS5 port,
// the HTTP proxy's CONNECT tunnels): what the SOCKS and CONNECT sections of docs/client.md promise.
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { StreamError } from '../core/stream-mux.js';
import { ErrorCode } from '../errors.js';
import { pipeReleasing } from './pipe-releasing.js';

/**
 * Bytes flow both ways with backpressure, either side closing closes the other, and a stream that
 * fails resets the socket (RST, not FIN): the program must not take a failed or cut stream for a whole
 * one. `onRefused` hears of an exit's refusal that came after the answer, which only an optimistic
 * stream can meet (it exists before the exit has answered).
 */
export function spliceStream(
  socket: net.Socket,
  stream: Duplex,
  onRefused: (err: StreamError) => void,
): void {
  stream.on('error', (err: Error) => {
    if (err instanceof StreamError && err.code === ErrorCode.STREAM_REFUSED) onRefused(err);
    socket.resetAndDestroy();
  });
  socket.on('error', () => stream.destroy());
  socket.on('close', () => stream.destroy());
  stream.on('close', () => socket.destroySoon());
  socket.pipe(stream);
  pipeReleasing(stream, socket);
}
