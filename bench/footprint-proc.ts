import { existsSync, readFileSync, realpathSync } from "node:fs";

/**
 * What Linux says about one process (its resident memory and the bytes it caused to be written) and
 * about the filesystem under a path. Read from /proc, the same numbers `top` and `iotop` show.
 */

export interface ProcSample {
  /** Resident set size (VmRSS), bytes. */
  readonly rssBytes: number;
  /**
   * Bytes this process caused to be sent to the block layer (page-cache pages it dirtied, counted once
   * each time a clean page becomes dirty, so page-sized steps). What wears an SD card.
   */
  readonly writeBytes: number;
  /** Dirty page-cache bytes that were thrown away before reaching the disk (a truncate). */
  readonly cancelledWriteBytes: number;
  /** Bytes passed to write(2) and friends: files, but also sockets, pipes and the terminal. */
  readonly wchar: number;
  /** Write system calls. */
  readonly syscw: number;
}

/** Whether this kernel keeps per-process I/O accounting (CONFIG_TASK_IO_ACCOUNTING). */
export function hasProcIo(): boolean {
  return existsSync("/proc/self/io");
}

/** One reading of the process, or null once it has exited. */
export function readProc(pid: number): ProcSample | null {
  let status: string;
  let io: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, "utf8");
    io = readFileSync(`/proc/${pid}/io`, "utf8");
  } catch {
    return null;
  }
  const field = (text: string, name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(text);
    if (!match) throw new Error(`/proc/${pid}: no ${name} field`);
    return Number(match[1]);
  };
  return {
    rssBytes: field(status, "VmRSS") * 1024,
    writeBytes: field(io, "write_bytes"),
    cancelledWriteBytes: field(io, "cancelled_write_bytes"),
    wchar: field(io, "wchar"),
    syscw: field(io, "syscw"),
  };
}

export interface MountInfo {
  readonly mountPoint: string;
  readonly fsType: string;
  readonly source: string;
}

/** Filesystems whose writes never reach a block device: measuring the store's writes on them reads 0. */
export const MEMORY_FILESYSTEMS: readonly string[] = ["tmpfs", "ramfs", "overlay", "squashfs", "fuse.lxcfs"];

/** The mount that holds `path` (the longest mount point above it), from /proc/self/mountinfo. */
export function mountOf(path: string): MountInfo {
  const real = realpathSync(path);
  let best: MountInfo | null = null;
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    if (!line) continue;
    // 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
    const [left, right] = line.split(" - ");
    const mountPoint = unescapeMount(left?.split(" ")[4] ?? "");
    const [fsType, source] = (right ?? "").split(" ");
    const inside = real === mountPoint || real.startsWith(mountPoint === "/" ? "/" : `${mountPoint}/`);
    if (inside && (!best || mountPoint.length >= best.mountPoint.length))
      best = { mountPoint, fsType: fsType ?? "?", source: source ?? "?" };
  }
  if (!best) throw new Error(`no mount holds ${real}`);
  return best;
}

/** mountinfo writes spaces, tabs, newlines and backslashes in octal (\040). */
const unescapeMount = (text: string) =>
  text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
