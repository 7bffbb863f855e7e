// Process lifecycle shared by the long-running commands: stop cleanly on SIGINT/SIGTERM, and print
// one `ready ...` line on stdout that scripts (and `allium testnet`) wait for.
export function onShutdown(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    // Service managers wait about 5 s before SIGKILL (docs/deploy.md): exit before that regardless.
    const force = setTimeout(() => {
      console.error(`allium: stopping on ${signal} took more than 4 s: exiting without finishing`);
      process.exit(0);
    }, 4000);
    force.unref();
    stop()
      .catch((err) => console.error(`allium: error while stopping on ${signal}: ${err.message}`))
      .finally(() => process.exit(0));
  };
  process.on('SIGINT', () => handler('SIGINT'));
  process.on('SIGTERM', () => handler('SIGTERM'));
}

export function announceReady(fields: Record<string, string | number>): void {
  const parts = Object.entries(fields).map(([k, v]) => `${k}=${v}`);
  process.stdout.write(`ready ${parts.join(' ')}\n`);
}

/** Any error escaping a role is a bug: log it and keep serving the others rather than crash. */
export function keepAlive(log: { error(o: object, m: string): void }): void {
  process.on('uncaughtException', (err) =>
    log.error({ err: err.stack }, 'uncaught exception (bug): continuing'),
  );
  process.on('unhandledRejection', (err) =>
    log.error({ err: String(err) }, 'unhandled rejection (bug): continuing'),
  );
}
