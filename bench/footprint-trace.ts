import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";

/**
 * Who writes what: the gateway's write and sync system calls for a while, under strace, summed per
 * file. /proc's counters say how much reached the disk; this says which file it went to (the WAL, the
 * database pages of a checkpoint, the latch record) and how many syncs came with it. Memory-mapped
 * writes (SQLite's -shm index) make no system call and do not show here.
 */

export interface FileWrites {
  /** write/pwrite/writev calls. */
  writes: number;
  /** Bytes those calls passed (not rounded to pages). */
  bytes: number;
  /** fsync + fdatasync calls. */
  syncs: number;
  /** ftruncate calls (SQLite truncates its WAL when asked to). */
  truncates: number;
}

export interface TraceSummary {
  readonly seconds: number;
  /** By file name for the gateway's files, `socket`, `pipe` (stdout: the log) or the device path. */
  readonly byTarget: Record<string, FileWrites>;
}

const SYSCALLS = "write,pwrite64,writev,pwritev,pwritev2,fsync,fdatasync,ftruncate";

/** Traces `pid` (every thread) for `seconds`; null with the reason when strace cannot run here. */
export async function traceWrites(pid: number, seconds: number): Promise<TraceSummary | string> {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-footprint-trace-"));
  try {
    // -ff: one output file per thread, so that no call is split into "unfinished"/"resumed" halves.
    // -y: file descriptors with their paths. -s 0: no buffer contents.
    const child = spawn(
      "strace",
      [
        "-f",
        "-ff",
        "-qq",
        "-y",
        "-s",
        "0",
        "-e",
        `trace=${SYSCALLS}`,
        "-o",
        join(dir, "t"),
        "-p",
        String(pid),
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | string>((done) => {
      child.once("error", (error) => done(`strace could not run: ${error.message}`));
      child.once("exit", (code, signal) => done(code ?? signal ?? 0));
    });
    const early = await Promise.race([exited, sleep(seconds * 1000).then(() => null)]);
    if (early !== null) return `strace ended early (${early}): ${stderr.trim() || "no message"}`;
    child.kill("SIGINT");
    await exited;
    const byTarget: Record<string, FileWrites> = {};
    for (const file of readdirSync(dir))
      for (const line of readFileSync(join(dir, file), "utf8").split("\n")) addCall(byTarget, line);
    return { seconds, byTarget };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const CALL = /^(\w+)\(\d+<([^>]*)>.*\)\s+=\s+(-?\d+)/;

/** Adds one strace line (`pwrite64(21</d/gateway.db-wal>, ""..., 4120, 0) = 4120`) to the sums. */
export function addCall(sums: Record<string, FileWrites>, line: string): void {
  const match = CALL.exec(line);
  if (!match) return;
  const [, name, path, result] = match as unknown as [string, string, string, string];
  const target = path.startsWith("socket:")
    ? "socket"
    : path.startsWith("pipe:")
      ? "pipe"
      : path.startsWith("/dev/")
        ? path
        : basename(path);
  const sum = (sums[target] ??= { writes: 0, bytes: 0, syncs: 0, truncates: 0 });
  const value = Number(result);
  if (name === "fsync" || name === "fdatasync") sum.syncs++;
  else if (name === "ftruncate") sum.truncates++;
  else if (value >= 0) {
    sum.writes++;
    sum.bytes += value;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
