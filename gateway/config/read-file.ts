import { closeSync, constants, fstatSync, openSync, readSync, type Stats, statSync } from "node:fs";

/**
 * Reading a file a user named (a config file, a plan, a profile, a password file) without trusting
 * what the name points at: `/dev/zero` would be read forever, `/dev/urandom` until memory runs out,
 * a FIFO blocks the open until someone writes, and opening a serial device raises its control lines.
 * So only regular files are opened, their size is checked before a byte is read, and no more than
 * the limit (plus one byte, to notice a file that grew) is ever read.
 */

/** Why a file cannot be used; `reason` reads after the file's name ("is a directory, not a file"). */
export class UnreadableFileError extends Error {
  override readonly name = "UnreadableFileError";
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
  }
}

// Non-blocking, so that a FIFO swapped in between the check and the open cannot block the open; no
// controlling terminal, should a terminal be swapped in. Both are no-ops on a regular file.
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0);

/** Reads a whole regular file of at most `maxBytes` bytes; anything else is an UnreadableFileError. */
export function readRegularFile(file: string, maxBytes: number): Buffer {
  // stat before open: opening a device or a FIFO can block or have effects of its own.
  refuseUnlessRegular(file, statOrRefuse(file, () => statSync(file)), maxBytes);
  const fd = openOrRefuse(file);
  try {
    // fstat of what was opened: the path may have been swapped since the stat above.
    const stats = statOrRefuse(file, () => fstatSync(fd));
    refuseUnlessRegular(file, stats, maxBytes);
    const content = readAtMost(fd, maxBytes + 1);
    if (content.byteLength > maxBytes) throw tooLarge(file, content.byteLength, maxBytes, "or more ");
    return content;
  } finally {
    closeSync(fd);
  }
}

function refuseUnlessRegular(file: string, stats: Stats, maxBytes: number): void {
  if (!stats.isFile()) throw new UnreadableFileError(file, `is ${kindOf(stats)}, not a regular file`);
  if (stats.size > maxBytes) throw tooLarge(file, stats.size, maxBytes, "");
}

function tooLarge(file: string, bytes: number, maxBytes: number, atLeast: string): UnreadableFileError {
  return new UnreadableFileError(file, `is ${atLeast}${bytes} bytes; the limit is ${maxBytes} bytes`);
}

function kindOf(stats: Stats): string {
  if (stats.isDirectory()) return "a directory";
  if (stats.isFIFO()) return "a named pipe (FIFO)";
  if (stats.isCharacterDevice()) return "a character device";
  if (stats.isBlockDevice()) return "a block device";
  if (stats.isSocket()) return "a socket";
  return "not a file";
}

function readAtMost(fd: number, bytes: number): Buffer {
  const buffer = Buffer.alloc(bytes);
  let filled = 0;
  while (filled < bytes) {
    const n = readSync(fd, buffer, filled, bytes - filled, null);
    if (n === 0) break;
    filled += n;
  }
  return buffer.subarray(0, filled);
}

function statOrRefuse(file: string, stat: () => Stats): Stats {
  try {
    return stat();
  } catch (error) {
    throw new UnreadableFileError(file, describeErrno(error));
  }
}

function openOrRefuse(file: string): number {
  try {
    return openSync(file, OPEN_FLAGS);
  } catch (error) {
    throw new UnreadableFileError(file, describeErrno(error));
  }
}

function describeErrno(error: unknown): string {
  switch ((error as NodeJS.ErrnoException).code) {
    case "ENOENT":
      return "no such file";
    case "ENOTDIR":
      return "no such file (a directory on its path is a file)";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "ELOOP":
      return "too many symbolic links";
    default:
      return (error as Error).message;
  }
}
