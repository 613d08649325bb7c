/**
 * A store that cannot do what was asked of it: the message names the file and says what to do. Kept in
 * its own module so that the store and the latch record (which the store composes) can both throw it.
 */
export class StoreError extends Error {
  override name = "StoreError";
}

/**
 * An I/O failure of the store (ours, or SQLite's own: a full disk, a locked or corrupt file), as
 * opposed to a programming error: only these may be caught and degraded around; a bug ends the process.
 */
export function isStoreFailure(error: unknown): error is Error {
  return error instanceof StoreError || (error instanceof Error && error.name === "SqliteError");
}
