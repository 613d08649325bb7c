/**
 * A package build that cannot go on: the message says what failed, where, and what to do (the tool to
 * install, the file to look at). The command prints it as one line and exits 1; a stack trace is only
 * ever printed for a bug.
 */
export class PackagingError extends Error {
  override readonly name = "PackagingError";
}
