import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import type { FaultKind, FaultLatch } from "../core/monitor.js";

/**
 * Where a latched fault is kept so that it survives a restart: only an operator reset clears it.
 * The SQLite store implements the same interface.
 */
export interface LatchStore {
  load(): FaultLatch | null;
  /** Must be durable when it returns. */
  save(latch: FaultLatch): void;
  clear(by: string): void;
}

export class MemoryLatchStore implements LatchStore {
  private latch: FaultLatch | null = null;
  load(): FaultLatch | null {
    return this.latch;
  }
  save(latch: FaultLatch): void {
    this.latch = latch;
  }
  clear(): void {
    this.latch = null;
  }
}

const FAULT_KINDS: readonly FaultKind[] = [
  "conflict",
  "min-go-cut",
  "clearance-cut",
  "red-clearance-cut",
  "go-without-clearance",
  "red-fail",
  "feedback-mismatch",
  "observed-conflict",
  "device-lost",
  "internal",
];

/** A latch in a small JSON file, written atomically and fsynced (file and directory). */
export class FileLatchStore implements LatchStore {
  constructor(private readonly path: string) {}

  load(): FaultLatch | null {
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw error;
    }
    try {
      const value = JSON.parse(text) as Partial<FaultLatch>;
      if (typeof value.message === "string" && FAULT_KINDS.includes(value.kind as FaultKind)) {
        return value as FaultLatch;
      }
    } catch {
      // fall through: an unreadable latch file is treated as a latch, never as "no fault"
    }
    return {
      kind: "internal",
      groups: [],
      message: `latch file ${this.path} is unreadable; the intersection stays in flash until an operator reset`,
      atWallMs: 0,
    };
  }

  save(latch: FaultLatch): void {
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, "w");
    try {
      writeSync(fd, JSON.stringify(latch));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    syncDirectory(dirname(this.path));
  }

  /** `by` goes to the audit trail, which the caller keeps. */
  clear(_by?: string): void {
    rmSync(this.path, { force: true });
    syncDirectory(dirname(this.path));
  }
}

function syncDirectory(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
