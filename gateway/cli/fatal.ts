import type { Logger } from "../shell/log.js";

/** The exit code of a process ended by a bug (as for an internal error of any command). */
export const EXIT_BUG = 70;

/**
 * Fail fast on bugs: an exception nobody caught (a TypeError in a feature, a broken invariant) ends a
 * long-running process at once with one clear line, instead of leaving it running in an unknown state.
 * The lamps are not at stake: the module's watchdog takes them to its safe state, the service manager
 * restarts the gateway, and start-up takes over the field safely. Only store I/O errors are degraded
 * around (gateway/node/store-guard.ts).
 */
export function exitOnBug(log: Logger, what: string): void {
  const fatal = (error: unknown, how: string) => {
    const err = error instanceof Error ? error : new Error(String(error));
    log.fatal(
      { error: err.message, stack: err.stack, how },
      `internal error (a bug; please report): ${err.name}: ${err.message} — ${what} ends now; the I/O module's watchdog holds the lamps in its safe state and the service manager restarts the gateway`,
    );
    process.exit(EXIT_BUG);
  };
  process.on("uncaughtException", (error) => fatal(error, "uncaught exception"));
  process.on("unhandledRejection", (error) => fatal(error, "unhandled rejection"));
}
