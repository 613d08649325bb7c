/**
 * A store that cannot do what was asked of it: the message names the file and says what to do. Kept in
 * its own module so that the store and the latch record (which the store composes) can both throw it.
 */
export class StoreError extends Error {
  override name = "StoreError";
}
