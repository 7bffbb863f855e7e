// Implements docs/protocol.md §5 (flow control): package and deliver windows for circuits and streams.
import { AlliumError } from '../errors.js';
import {
  CIRC_SENDME_INCREMENT,
  CIRC_WINDOW_START,
  STREAM_SENDME_INCREMENT,
  STREAM_WINDOW_START,
} from '../wire/constants.js';

export class FlowControlError extends AlliumError {}

/** One endpoint's view of a circuit's windows (only DATA cells count). */
export class CircuitWindow {
  packageWindow = CIRC_WINDOW_START;
  private deliverWindow = CIRC_WINDOW_START;
  private sent = 0;
  private received = 0;
  /** Macs of every INCREMENT-th DATA cell we sent, that the peer's SENDMEs must echo, in order. */
  private readonly expectedTags: Buffer[] = [];

  /** Call after sealing a DATA cell whose mac is `tag`. */
  onDataSent(tag: Buffer): void {
    this.packageWindow--;
    this.sent++;
    if (this.sent % CIRC_SENDME_INCREMENT === 0) this.expectedTags.push(Buffer.from(tag));
  }

  /**
   * Call on every DATA cell received. Returns the tag to echo in a circuit SENDME when one is due, else null.
   * Throws when the peer sent past its window.
   */
  onDataReceived(tag: Buffer): Buffer | null {
    this.deliverWindow--;
    if (this.deliverWindow < 0) {
      throw new FlowControlError(
        'ALLIUM_FLOW_WINDOW',
        'peer sent more DATA cells than the circuit window allows',
      );
    }
    this.received++;
    if (this.received % CIRC_SENDME_INCREMENT === 0) {
      this.deliverWindow += CIRC_SENDME_INCREMENT;
      return tag;
    }
    return null;
  }

  /** A circuit SENDME arrived. Throws if its tag is not the one we expect (an unearned SENDME). */
  onSendme(tag: Buffer): void {
    const expected = this.expectedTags.shift();
    if (!expected || !expected.equals(tag)) {
      throw new FlowControlError('ALLIUM_FLOW_SENDME', 'circuit SENDME with an unexpected tag');
    }
    this.packageWindow += CIRC_SENDME_INCREMENT;
  }
}

/** One endpoint's view of a stream's windows. */
export class StreamWindow {
  packageWindow = STREAM_WINDOW_START;
  private deliverWindow = STREAM_WINDOW_START;
  private consumedSinceSendme = 0;

  onDataSent(): void {
    this.packageWindow--;
  }

  onDataReceived(): void {
    this.deliverWindow--;
    if (this.deliverWindow < 0) {
      throw new FlowControlError(
        'ALLIUM_FLOW_WINDOW',
        'peer sent more DATA cells than the stream window allows',
      );
    }
  }

  /** The application consumed `cells` DATA cells; returns how many stream SENDMEs to send now. */
  onConsumed(cells: number): number {
    this.consumedSinceSendme += cells;
    let due = 0;
    while (this.consumedSinceSendme >= STREAM_SENDME_INCREMENT) {
      this.consumedSinceSendme -= STREAM_SENDME_INCREMENT;
      this.deliverWindow += STREAM_SENDME_INCREMENT;
      due++;
    }
    return due;
  }

  onSendme(): void {
    this.packageWindow += STREAM_SENDME_INCREMENT;
    if (this.packageWindow > STREAM_WINDOW_START) {
      throw new FlowControlError('ALLIUM_FLOW_SENDME', 'stream SENDME beyond the window');
    }
  }
}
