// Fixed listening addresses given as flags, checked before a command starts its slow parts (a
// client's wait for the consensus, a testnet's six processes): a taken port is named by its flag.
import { AlliumError } from '../errors.js';
import { checkListenable } from '../net/port-check.js';

type Addr = { host: string; port: number };

export async function checkPortFlags(flags: [flag: string, addr: Addr | undefined][]): Promise<void> {
  for (const [flag, addr] of flags) {
    if (!addr || addr.port === 0) continue;
    await checkListenable(addr.host, addr.port).catch((err: NodeJS.ErrnoException) => {
      const where = `${addr.host.includes(':') ? `[${addr.host}]` : addr.host}:${addr.port}`;
      const why =
        err.code === 'EADDRINUSE'
          ? 'the address is already in use (another allium, or another program: see `ss -ltnp`)'
          : err.message;
      throw new AlliumError(
        'ALLIUM_LISTEN',
        `cannot listen on ${where} (${flag}): ${why}; pick another ${flag}, or port 0 for any free port`,
      );
    });
  }
}
