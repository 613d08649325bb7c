import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { FaultLatch } from "../../gateway/core/monitor.js";
import {
  LATCH_RECORD_FILE,
  LatchRecordFile,
  nodeRecordFs,
  RECORD_SIZE,
  type RecordFs,
} from "../../gateway/store/latch-record.js";
import { GatewayStore, inspectStoredLatch, STORE_FILE, StoreError } from "../../gateway/store/store.js";
import { buildOnce, CLI } from "../e2e/cli.js";
import { cleanupProcesses, dirs, start, stop } from "../e2e/processes.js";
import { writeFixture } from "../support/fixture-intersection.js";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { mountTmpfs } from "../support/tools.js";

/**
 * A latched fault must survive a lost, emptied or full store (issue 12, defect 3). Everything here is
 * real: SQLite on disk, the latch record on disk, a real tmpfs filled to the last byte, the compiled
 * CLI. Failures are injected only into the latch record's file operations (its RecordFs seam) and,
 * for the database, by a second connection that holds SQLite's write lock.
 */

const INTERSECTION = "x1";
const redFail: FaultLatch = {
  kind: "red-fail",
  groups: ["M"],
  message: "M shows no indication",
  atWallMs: 1_000,
};
const conflict: FaultLatch = {
  kind: "conflict",
  groups: ["M", "S"],
  message: "M and S green together",
  atWallMs: 2_000,
};

const cleanups: (() => void)[] = [];
afterEach(async () => {
  await cleanupProcesses();
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

/** A data directory (what --data-dir names) and the store directory of intersection x1 in it. */
function dataDir(): { root: string; dir: string } {
  const root = fs.mkdtempSync(join(tmpdir(), "greenwave-latch-"));
  cleanups.push(() => fs.rmSync(root, { recursive: true, force: true }));
  return { root, dir: join(root, INTERSECTION) };
}

function openStore(dir: string, recordFs?: RecordFs): GatewayStore {
  const store = GatewayStore.open(dir, undefined, recordFs ? { recordFs } : {});
  cleanups.push(() => store.close());
  return store;
}

/** What a restart loads: a new store on the same directory. */
function loadAfterRestart(dir: string): FaultLatch | null {
  const store = GatewayStore.open(dir);
  try {
    return store.load();
  } finally {
    store.close();
  }
}

function storeWith(dir: string, latch: FaultLatch | null): void {
  const store = GatewayStore.open(dir);
  if (latch) store.save(latch);
  store.close();
}

function removeDatabase(dir: string): void {
  for (const suffix of ["", "-wal", "-shm"]) fs.rmSync(join(dir, STORE_FILE + suffix), { force: true });
}

function corruptSlot(dir: string, slot: "A" | "B"): void {
  const fd = fs.openSync(join(dir, LATCH_RECORD_FILE), "r+");
  const offset = (slot === "A" ? 0 : RECORD_SIZE / 2) + 60; // inside the slot's payload
  fs.writeSync(fd, Buffer.from("garbage!"), 0, 8, offset);
  fs.closeSync(fd);
}

function greenwave(...args: string[]) {
  return spawnSync("node", [CLI, ...args], { encoding: "utf8", timeout: 20_000 });
}

describe("a latched fault survives a lost or emptied store", () => {
  beforeAll(() => buildOnce(), 120_000);

  it("creates a preallocated latch record beside a new store, and ties the database to it", () => {
    const { dir } = dataDir();
    const store = openStore(dir);
    expect(fs.statSync(join(dir, LATCH_RECORD_FILE)).size).toBe(RECORD_SIZE);
    expect(store.latchFindings).toEqual([]);
    expect(store.load()).toBeNull();
    expect(store.latchDurability).toEqual({ durable: true, copies: ["database", "record"], problem: null });
    const inspection = inspectStoredLatch(dir);
    expect(inspection.record.status).toBe("ok");
    expect(inspection.database).toMatchObject({ status: "ok", recordCreated: true, latch: null });
  });

  it("a database truncated to 0 bytes after a latch: the record still holds it, and `fault show` prints it", () => {
    const { root, dir } = dataDir();
    storeWith(dir, redFail);
    fs.truncateSync(join(dir, STORE_FILE), 0);

    const show = greenwave("fault", "show", "--intersection", INTERSECTION, "--data-dir", root);
    expect(show.status, show.stderr).toBe(1); // documented: exit 1 when a fault is latched
    expect(show.stdout).toContain(`latched fault at ${INTERSECTION}: red-fail: M shows no indication`);
    expect(show.stdout).toMatch(/latch\.rec .*: latched red-fail/);
    expect(show.stdout).toMatch(/gateway\.db .*: empty \(0 bytes\)/);

    const store = openStore(dir);
    expect(store.load()).toEqual(redFail);
    expect(store.latchFindings.join("\n")).toMatch(/gateway\.db is empty/);
    store.close();
    // The start repaired the database: both copies hold it again.
    expect(inspectStoredLatch(dir).database).toMatchObject({ status: "ok", latch: redFail });
  });

  it("a database truncated to 0 bytes with no latch: the gateway has run before, so it latches store-lost", () => {
    const { dir } = dataDir();
    storeWith(dir, null);
    fs.truncateSync(join(dir, STORE_FILE), 0);
    const latch = loadAfterRestart(dir);
    expect(latch?.kind).toBe("store-lost");
    expect(latch?.message).toMatch(
      /gateway\.db is empty .*check the intersection and the store, then reset the fault/,
    );
  });

  it("a deleted database (and its -wal, -shm): store-lost, shown by `fault show`, kept across restarts until `fault clear`", () => {
    const { root, dir } = dataDir();
    storeWith(dir, null);
    removeDatabase(dir);

    const show = greenwave("fault", "show", "--intersection", INTERSECTION, "--data-dir", root);
    expect(show.status, show.stderr).toBe(1);
    expect(show.stdout).toContain(`latched fault at ${INTERSECTION}: store-lost`);
    expect(show.stdout).toMatch(/gateway\.db .*: missing/);

    expect(loadAfterRestart(dir)?.kind).toBe("store-lost");
    // The synthesized latch was made durable at that start: a second restart still has it.
    expect(loadAfterRestart(dir)?.kind).toBe("store-lost");

    const clear = greenwave(
      "fault",
      "clear",
      "--intersection",
      INTERSECTION,
      "--data-dir",
      root,
      "--by",
      "tech 42",
    );
    expect(clear.status, clear.stderr).toBe(0);
    expect(clear.stdout).toMatch(/cleared store-lost at x1 .* in .*latch\.rec and .*gateway\.db/);
    expect(loadAfterRestart(dir)).toBeNull();
    const after = greenwave("fault", "show", "--intersection", INTERSECTION, "--data-dir", root);
    expect(after.status).toBe(0);
    expect(after.stdout).toContain(`no latched fault at ${INTERSECTION}`);
  });

  it("a torn or corrupt record slot: the other slot is used", () => {
    const { dir } = dataDir();
    const store = openStore(dir);
    store.save(redFail); // slot B, seq 2
    store.save(conflict); // slot A, seq 3
    store.close();
    corruptSlot(dir, "A");
    removeDatabase(dir); // only the record is left to tell

    const inspection = inspectStoredLatch(dir);
    expect(inspection.record).toMatchObject({
      status: "ok",
      slot: "B",
      seq: 2,
      otherSlot: { problem: expect.stringMatching(/checksum/) },
    });
    expect(inspection.latch).toEqual(redFail);
    expect(loadAfterRestart(dir)).toEqual(redFail);
  });

  it("a record corrupt in both slots: latched (store-lost), even though the database says clear", () => {
    const { dir } = dataDir();
    storeWith(dir, null);
    corruptSlot(dir, "A");
    corruptSlot(dir, "B");
    const latch = loadAfterRestart(dir);
    expect(latch?.kind).toBe("store-lost");
    expect(latch?.message).toMatch(/latch record .*latch\.rec is unreadable/);
    // That start rewrote the record with the latch: it is readable again and holds it.
    expect(inspectStoredLatch(dir).record).toMatchObject({
      status: "ok",
      state: { latch: { kind: "store-lost" } },
    });
  });

  it("a record corrupt in both slots while the database holds a latch: that latch", () => {
    const { dir } = dataDir();
    storeWith(dir, redFail);
    corruptSlot(dir, "A");
    corruptSlot(dir, "B");
    expect(loadAfterRestart(dir)).toEqual(redFail);
  });

  it("a record lost although the database says it was made: store-lost", () => {
    const { dir } = dataDir();
    storeWith(dir, null);
    fs.rmSync(join(dir, LATCH_RECORD_FILE));
    expect(loadAfterRestart(dir)?.kind).toBe("store-lost");
  });

  it("`fault clear` clears both copies, and a later load is clear", () => {
    const { root, dir } = dataDir();
    storeWith(dir, redFail);
    const clear = greenwave(
      "fault",
      "clear",
      "--intersection",
      INTERSECTION,
      "--data-dir",
      root,
      "--by",
      "tech 42",
    );
    expect(clear.status, clear.stderr).toBe(0);
    expect(clear.stdout).toContain("cleared red-fail at x1");
    const inspection = inspectStoredLatch(dir);
    expect(inspection.record).toMatchObject({
      status: "ok",
      state: { latch: null, cleared: { by: "tech 42" } },
    });
    expect(inspection.database).toMatchObject({ status: "ok", latch: null });
    expect(loadAfterRestart(dir)).toBeNull();
  });

  it("upgrade: a database with a latch and no record (an older greenwave) gets its record, and keeps the latch", () => {
    const { dir } = dataDir();
    storeWith(dir, redFail);
    // What an older greenwave left: no latch.rec, no markers in meta.
    fs.rmSync(join(dir, LATCH_RECORD_FILE));
    const db = new Database(join(dir, STORE_FILE));
    db.prepare("DELETE FROM meta WHERE key IN ('store_id', 'latch_record_created')").run();
    db.close();

    const store = openStore(dir);
    expect(store.load()).toEqual(redFail);
    expect(store.latchFindings.join("\n")).toMatch(/no latch record yet/);
    store.close();
    expect(inspectStoredLatch(dir).record).toMatchObject({ status: "ok", state: { latch: redFail } });
    // The new record now protects it: the database emptied, the latch is still there.
    fs.truncateSync(join(dir, STORE_FILE), 0);
    expect(loadAfterRestart(dir)).toEqual(redFail);
  });
});

/** node:fs for the latch record, with failures switched on by the test: ENOSPC or EIO as a disk gives them. */
function failingFs(): {
  fs: RecordFs;
  fail: { write: string | null; sync: string | null };
  writes: number[];
} {
  const fail = { write: null as string | null, sync: null as string | null };
  const writes: number[] = [];
  const errno = (code: string) => Object.assign(new Error(`${code}: injected by the test`), { code });
  return {
    fail,
    writes,
    fs: {
      ...nodeRecordFs,
      writeSync: (fd, buffer, offset, length, position) => {
        writes.push(position);
        if (fail.write) throw errno(fail.write);
        return nodeRecordFs.writeSync(fd, buffer, offset, length, position);
      },
      fdatasyncSync: (fd) => {
        if (fail.sync) throw errno(fail.sync);
        nodeRecordFs.fdatasyncSync(fd);
      },
    },
  };
}

/** A second connection that holds SQLite's write lock: the store's own write then fails (SQLITE_BUSY). */
function lockDatabase(dir: string): () => void {
  const other = new Database(join(dir, STORE_FILE));
  other.exec("BEGIN IMMEDIATE");
  const release = () => {
    if (!other.open) return;
    other.exec("ROLLBACK");
    other.close();
  };
  cleanups.push(release);
  return release;
}

describe("a latch that cannot be stored is reported, never claimed durable (injected failures)", () => {
  it("record write fails (EIO), database takes it: save throws naming latch.rec; still durable; a restart finds it", () => {
    const { dir } = dataDir();
    const injected = failingFs();
    const store = openStore(dir, injected.fs);
    injected.fail.sync = "EIO";
    expect(() => store.save(redFail)).toThrow(StoreError);
    expect(() => store.save(redFail)).toThrow(
      /stored only in .*gateway\.db: cannot write the latch record .*latch\.rec \(slot B\): EIO/,
    );
    expect(store.latchDurability).toMatchObject({ durable: true, copies: ["database"] });
    expect(store.latchDurability.problem).toMatch(/latch\.rec/);
    store.close();
    expect(loadAfterRestart(dir)).toEqual(redFail);
  });

  it("both copies fail (ENOSPC on the record, the database locked): save throws, nothing claims durable", () => {
    const { dir } = dataDir();
    const injected = failingFs();
    const store = openStore(dir, injected.fs);
    injected.fail.write = "ENOSPC";
    const release = lockDatabase(dir);
    expect(() => store.save(redFail)).toThrow(
      /latched fault \(red-fail\) is NOT stored: .*latch\.rec.*ENOSPC.*locked/,
    );
    expect(store.latchDurability).toMatchObject({ durable: false, copies: [] });
    release();
    store.close();
    // Honest: it was indeed not stored.
    expect(loadAfterRestart(dir)).toBeNull();
  });

  it("the database fails, the record takes it: save throws, durable in the record; a restart finds it", () => {
    const { dir } = dataDir();
    const store = openStore(dir);
    const release = lockDatabase(dir);
    expect(() => store.save(conflict)).toThrow(/stored only in .*latch\.rec/);
    expect(store.latchDurability).toMatchObject({ durable: true, copies: ["record"] });
    release();
    store.close();
    expect(loadAfterRestart(dir)).toEqual(conflict);
  });

  it("a clear that reaches one copy only is undone by the next start (the safe direction)", () => {
    const { dir } = dataDir();
    storeWith(dir, redFail);
    const store = openStore(dir);
    const release = lockDatabase(dir);
    expect(() => store.clear("tech 42")).toThrow(
      /gateway\.db still holds it .*a restart would latch it again/,
    );
    release();
    store.close();
    expect(loadAfterRestart(dir)).toEqual(redFail);
  });

  it("after a failed sync the next write goes to the same slot, never over the last good one", () => {
    const { dir } = dataDir();
    fs.mkdirSync(dir, { recursive: true });
    const injected = failingFs();
    const record = new LatchRecordFile(join(dir, LATCH_RECORD_FILE), injected.fs);
    record.create({ storeId: "s", latch: null, cleared: null });
    injected.writes.length = 0;
    injected.fail.sync = "EIO";
    expect(() => record.write({ storeId: "s", latch: redFail, cleared: null })).toThrow(/slot B.*EIO/);
    injected.fail.sync = null;
    record.write({ storeId: "s", latch: redFail, cleared: null });
    expect(injected.writes).toEqual([RECORD_SIZE / 2, RECORD_SIZE / 2]);
    expect(record.read()).toMatchObject({ status: "ok", slot: "B", state: { latch: redFail } });
  });
});

/** Writes a filler file until the filesystem refuses another byte; returns its path. */
function fillDisk(dir: string): string {
  const filler = join(dir, "filler");
  const fd = fs.openSync(filler, "w");
  try {
    for (let chunk = 64 * 1024; chunk >= 1; chunk = Math.floor(chunk / 2)) {
      const bytes = Buffer.alloc(chunk, 1);
      for (;;) {
        try {
          fs.writeSync(fd, bytes);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === "ENOSPC") break;
          throw error;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return filler;
}

describe("a full disk (a real tmpfs, filled)", () => {
  it("the latch still goes to the preallocated record; after space is freed a restart loads it", (context) => {
    const mountPoint = fs.mkdtempSync(join(tmpdir(), "greenwave-full-"));
    cleanups.push(() => fs.rmSync(mountPoint, { recursive: true, force: true }));
    const umount = mountTmpfs(
      mountPoint,
      "2m",
      "the full-disk latch test (the injected-failure tests still run)",
    );
    if (!umount) return context.skip("no tmpfs (see the message above)");
    cleanups.push(umount);
    const dir = join(mountPoint, INTERSECTION);
    const store = GatewayStore.open(dir);
    cleanups.push(() => store.close());
    const filler = fillDisk(mountPoint);

    let thrown: unknown = null;
    try {
      store.save(redFail);
    } catch (error) {
      thrown = error;
    }
    // The database could not take it (SQLite cannot grow its WAL); the record, written in place, did.
    expect(thrown).toBeInstanceOf(StoreError);
    expect((thrown as Error).message).toMatch(
      /stored only in .*latch\.rec: cannot store the latch in .*gateway\.db: database or disk is full/,
    );
    expect(store.latchDurability).toMatchObject({ durable: true, copies: ["record"] });

    fs.rmSync(filler);
    store.close();
    expect(loadAfterRestart(dir)).toEqual(redFail);
    // That restart repaired the database too.
    expect(inspectStoredLatch(dir).database).toMatchObject({ status: "ok", latch: redFail });
  });
});

describe("the gateway process", () => {
  beforeAll(() => buildOnce(), 120_000);

  it("a gateway that has run before and finds its store emptied starts in fault flash, asking for an operator", async () => {
    const sim = start(["sim", "io-module", "--tcp", "0", "--control", "0"]);
    const listening = await until("the simulator", 10_000, () =>
      sim.lines.find((l) => l.event === "listening"),
    );
    const fixture = writeFixture(`{ tcp: "127.0.0.1:${String(listening.modbusPort)}" }`);
    dirs.push(fixture.dir);
    const gatewayArgs = ["gateway", "--config", fixture.intersection, "--data-dir", fixture.dataDir];

    const first = start(gatewayArgs);
    await until("the first start", 10_000, () => first.lines.find((l) => l.msg === "gateway started"));
    expect(first.lines.some((l) => String(l.msg).startsWith("starting in fault flash"))).toBe(false);
    await stop(first);

    fs.truncateSync(join(fixture.dataDir, INTERSECTION, STORE_FILE), 0);
    const second = start(gatewayArgs);
    const restored = await until("the fault flash", 10_000, () =>
      second.lines.find((l) => String(l.msg).startsWith("starting in fault flash")),
    );
    expect((restored.latch as FaultLatch).kind).toBe("store-lost");
    expect(String(restored.msg)).toMatch(/store was lost or emptied .*then reset the fault/);
  }, 40_000);
});
