/**
 * A release command that refuses or cannot do what was asked (a missing release, an arch mismatch, a
 * downgrade the store cannot take, a hostile tarball): the message says what, where and what to do.
 * The command prints it as one line and exits 1; nothing has been switched when it is thrown.
 */
export class ReleaseError extends Error {
  override readonly name = "ReleaseError";
}
