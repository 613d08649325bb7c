import type { Logger } from "../shell/log.js";
import { isStoreFailure } from "../store/errors.js";

/**
 * Runs a store action, degrading on an I/O failure of the store (logged, with what was lost, and
 * counted by the caller's fallback); anything else — a TypeError, a broken invariant — is a bug and is
 * thrown on, to end the process (the module's watchdog holds the lamps safe, the service manager
 * restarts it, start-up takes over safely). Never used inside a transaction that must be atomic.
 */
export function degradeOnStoreFailure<T>(log: Logger, lost: string, action: () => T, fallback: T): T {
  try {
    return action();
  } catch (error) {
    if (!isStoreFailure(error)) throw error;
    log.error({ error: error.message }, `store failure: ${lost}`);
    return fallback;
  }
}
