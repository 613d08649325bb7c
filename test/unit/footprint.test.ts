import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { footprintFigures, type Sample } from "../../bench/footprint-figures.js";
import { MEMORY_FILESYSTEMS, mountOf, readProc } from "../../bench/footprint-proc.js";
import { addCall, type FileWrites } from "../../bench/footprint-trace.js";

/** The footprint bench's own measuring parts: what it reads from /proc and strace, and its arithmetic. */

const sample = (tS: number, writeBytes: number, extra: Partial<Sample> = {}): Sample => ({
  tMs: tS * 1000,
  rssBytes: 1000 + tS,
  writeBytes,
  cancelledWriteBytes: 0,
  wchar: writeBytes * 2,
  logBytes: tS * 10,
  files: {},
  ...extra,
});

describe("footprint figures", () => {
  it("extrapolates the steady state (after the warm-up) to a day, and splits it into events and quiet", () => {
    // 10 s samples; 100 kB during the start-up, then 20 kB at 70 s (one event) and nothing else.
    const samples = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100].map((t) =>
      sample(t, t <= 50 ? 100_000 : t < 70 ? 100_000 : 120_000),
    );
    const figures = footprintFigures(samples, 60_000, [5_000, 65_000]);
    expect(figures.rssAt1MinBytes).toBe(1060);
    expect(figures.rssEndBytes).toBe(1100);
    expect(figures.writeBytesTotal).toBe(120_000);
    const steady = figures.steady;
    expect(steady?.fromMs).toBe(60_000);
    expect(steady?.writeBytes).toBe(20_000);
    // 20 kB in 40 s: 43.2 MB a day.
    expect(steady?.writeMBPerDay).toBeCloseTo(43.2, 6);
    expect(steady?.events).toBe(1);
    expect(steady?.writeBytesPerEvent).toBe(20_000);
    expect(steady?.quietMBPerDay).toBe(0);
    // Four intervals: one at 20 kB/10 s (172.8 MB/day), three at nothing.
    expect(steady?.intervalMBPerDay).toMatchObject({ median: 0, intervals: 4 });
    expect(steady?.intervalMBPerDay.p99).toBeCloseTo(172.8, 6);
    expect(steady?.intervalMBPerDay.max).toBeCloseTo(172.8, 6);
  });

  it("has no steady state when the run ends within the warm-up", () => {
    expect(footprintFigures([sample(10, 0), sample(20, 0)], 60_000, []).steady).toBeNull();
  });
});

describe("strace lines", () => {
  it("sums writes, syncs and truncates per file, and sockets and pipes together", () => {
    const sums: Record<string, FileWrites> = {};
    for (const line of [
      'pwrite64(19</d/elm/gateway.db-wal>, ""..., 24, 206032) = 24',
      'pwrite64(19</d/elm/gateway.db-wal>, ""..., 4096, 206056) = 4096',
      "fsync(19</d/elm/gateway.db-wal>) = 0",
      "fdatasync(21</d/elm/latch.rec>) = 0",
      "ftruncate(19</d/elm/gateway.db-wal>, 0) = 0",
      'write(23<socket:[81234]>, ""..., 58) = 58',
      'writev(1<pipe:[5521]>, [{iov_base=""..., iov_len=100}], 1) = 100',
      'write(5<socket:[81234]>, ""..., 58) = -1 EAGAIN (Resource temporarily unavailable)',
      "--- SIGCHLD {si_signo=SIGCHLD} ---",
    ])
      addCall(sums, line);
    expect(sums).toEqual({
      "gateway.db-wal": { writes: 2, bytes: 4120, syncs: 1, truncates: 1 },
      "latch.rec": { writes: 0, bytes: 0, syncs: 1, truncates: 0 },
      socket: { writes: 1, bytes: 58, syncs: 0, truncates: 0 },
      pipe: { writes: 1, bytes: 100, syncs: 0, truncates: 0 },
    });
  });
});

describe("/proc readings (this process, a real file)", () => {
  it("counts the bytes a synced file write sends to the disk, when the directory is on one", () => {
    const dir = mkdtempSync(join(tmpdir(), "greenwave-footprint-test-"));
    try {
      const before = readProc(process.pid);
      expect(before?.rssBytes).toBeGreaterThan(1_000_000);
      const fd = openSync(join(dir, "f"), "w");
      writeSync(fd, Buffer.alloc(64 * 1024, 1));
      fsyncSync(fd);
      closeSync(fd);
      const after = readProc(process.pid);
      expect((after?.wchar ?? 0) - (before?.wchar ?? 0)).toBeGreaterThanOrEqual(64 * 1024);
      // On tmpfs nothing reaches a block device: the bench refuses such a directory for that reason.
      if (!MEMORY_FILESYSTEMS.includes(mountOf(dir).fsType))
        expect((after?.writeBytes ?? 0) - (before?.writeBytes ?? 0)).toBeGreaterThanOrEqual(64 * 1024);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("finds the mount that holds a path, and null for a process that is gone", () => {
    expect(mountOf("/proc/self").fsType).toBe("proc");
    expect(readProc(2 ** 22 + 1)).toBeNull();
  });
});
