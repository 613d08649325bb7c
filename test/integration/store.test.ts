import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { committedToResume } from "../../gateway/core/corridor/resume.js";
import { CoordinatorStore } from "../../gateway/store/coordinator-store.js";
import { MIGRATIONS } from "../../gateway/store/migrations.js";
import { DEFAULT_STORE_LIMITS, GatewayStore, STORE_FILE, StoreError } from "../../gateway/store/store.js";

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-store-"));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const message = (seq: number) => ({ topic: "t/events", payload: JSON.stringify({ seq }) });

describe("the gateway store (SQLite on disk)", () => {
  it("creates its schema, in WAL mode with synchronous FULL", () => {
    const store = GatewayStore.open(tempDir());
    expect(store.schemaVersion).toBe(MIGRATIONS.length);
    const db = new Database(store.file, { readonly: true });
    expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
    db.close();
    store.close();
  });

  it("keeps a latched fault across a restart until it is cleared", () => {
    const dir = tempDir();
    const latch = { kind: "red-fail" as const, groups: ["M"], message: "M dark", atWallMs: 42 };
    const first = GatewayStore.open(dir);
    first.save(latch);
    first.close();
    const second = GatewayStore.open(dir);
    expect(second.load()).toEqual(latch);
    second.clear();
    second.close();
    expect(GatewayStore.open(dir).load()).toBeNull();
  });

  it("numbers events without ever reusing a sequence number, across restarts and pruning", () => {
    const dir = tempDir();
    const store = GatewayStore.open(dir, { ...DEFAULT_STORE_LIMITS, maxEvents: 150, maxOutbox: 1000 });
    for (let i = 0; i < 300; i++)
      store.appendEvent({ atWallMs: i, type: "mode", actor: null, detail: { i } }, null);
    expect(store.eventsPruned).toBeGreaterThan(0);
    const kept = store.events(0, 1000);
    expect(kept.length).toBeLessThanOrEqual(250);
    expect(kept.at(-1)?.seq).toBe(300);
    store.close();
    const again = GatewayStore.open(dir, { ...DEFAULT_STORE_LIMITS, maxEvents: 150, maxOutbox: 1000 });
    expect(again.appendEvent({ atWallMs: 1, type: "x", actor: "alice", detail: {} }, null).seq).toBe(301);
    again.close();
  });

  it("queues each event's message in the same transaction, in order, and forgets it once delivered", () => {
    const store = GatewayStore.open(tempDir());
    for (let i = 0; i < 5; i++)
      store.appendEvent({ atWallMs: i, type: "t", actor: null, detail: {} }, message);
    expect(store.outbox(10).map((m) => m.seq)).toEqual([1, 2, 3, 4, 5]);
    store.delivered([1]);
    store.delivered([3]);
    expect(store.outbox(10).map((m) => m.seq)).toEqual([2, 4, 5]);
    expect(JSON.parse(store.outbox(1)[0]?.payload ?? "{}")).toEqual({ seq: 2 });
    store.close();
  });

  it("holds back messages written without an fsync until a forced write or a sync puts them on disk", () => {
    const store = GatewayStore.open(tempDir());
    const append = (i: number) =>
      store.appendEvent({ atWallMs: i, type: "t", actor: null, detail: {} }, message);
    const waiting = () => store.outbox(10).map((m) => m.seq);
    append(1);
    store.lazily(() => {
      append(2);
      append(3);
    });
    // A power cut could still take 2 and 3 back, and their numbers would go to other events.
    expect(store.hasUnsyncedOutbox).toBe(true);
    expect(waiting()).toEqual([1]);
    store.syncLazyWrites();
    expect(store.hasUnsyncedOutbox).toBe(false);
    expect(waiting()).toEqual([1, 2, 3]);
    store.lazily(() => append(4));
    expect(waiting()).toEqual([1, 2, 3]);
    // Any forced write of the protocol syncs the WAL, and with it everything written before.
    store.persistOutcome("txn-1", "aborted", 11);
    expect(waiting()).toEqual([1, 2, 3, 4]);
    // Inside a forced transaction, an unforced one is part of it.
    store.atomically(() => store.lazily(() => append(5)));
    expect(store.hasUnsyncedOutbox).toBe(false);
    store.delivered([1, 2, 3]);
    expect(waiting()).toEqual([4, 5]);
    // Every other write is forced again afterwards, also after an unforced one that failed.
    expect(store.synchronousSetting).toBe(2);
    expect(() =>
      store.lazily(() => {
        throw new Error("disk full");
      }),
    ).toThrow("disk full");
    expect(store.synchronousSetting).toBe(2);
    store.close();
  });

  it("keeps what it wrote without an fsync across a restart, and sends it once it is on disk", () => {
    const dir = tempDir();
    const store = GatewayStore.open(dir);
    store.lazily(() => store.appendEvent({ atWallMs: 1, type: "t", actor: null, detail: {} }, message));
    store.close();
    const again = GatewayStore.open(dir);
    expect(again.events(0, 10).map((e) => e.seq)).toEqual([1]);
    // Reopened (after a crash too), the store forces what it finds to disk before the outbox sends it.
    expect(again.outbox(10).map((m) => m.seq)).toEqual([1]);
    again.close();
  });

  it("bounds the outbox: past the limit the oldest go first, and the drops are counted durably", () => {
    const dir = tempDir();
    const store = GatewayStore.open(dir, { ...DEFAULT_STORE_LIMITS, maxEvents: 1000, maxOutbox: 10 });
    for (let i = 0; i < 25; i++)
      store.appendEvent({ atWallMs: i, type: "t", actor: null, detail: {} }, message);
    expect(store.outboxDepth()).toBe(10);
    expect(store.outbox(100).map((m) => m.seq)).toEqual([16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);
    expect(store.outboxDropped).toBe(15);
    // The audit trail itself keeps every event.
    expect(store.events(0, 100)).toHaveLength(25);
    store.close();
    expect(
      GatewayStore.open(dir, { ...DEFAULT_STORE_LIMITS, maxEvents: 1000, maxOutbox: 10 }).outboxDropped,
    ).toBe(15);
  });

  it("records plans received and the plan in force", () => {
    const store = GatewayStore.open(tempDir());
    store.recordPlan("am-peak", 3, { cycleMs: 90_000 }, "config", 1);
    store.recordPlan("am-peak", 3, { cycleMs: 1 }, "again", 2); // a plan version is immutable
    expect(store.planBody("am-peak", 3)).toEqual({ cycleMs: 90_000 });
    expect(store.planInForce()).toBeNull();
    store.setPlanInForce({ planId: "am-peak", version: 3, sinceWallMs: 5, activationWallMs: 4 });
    expect(store.planInForce()).toEqual({
      planId: "am-peak",
      version: 3,
      sinceWallMs: 5,
      activationWallMs: 4,
    });
    store.close();
  });

  it("lists the committed transactions a restart resumes, past a later aborted one, across a reopen", () => {
    const dir = tempDir();
    const first = GatewayStore.open(dir);
    const txn = (txnId: string, activationWallMs: number) => ({
      txnId,
      coordinator: "@op",
      token: 7,
      participants: ["elm", "oak"],
      plan: { planId: "am-peak", version: 2 },
      activationWallMs,
    });
    first.persistPrepared(txn("t1", 50_000), { body: null }, 7, 1_000);
    first.persistOutcome("t1", "committed", 1_100);
    first.persistPrepared(txn("t2", 60_000), { body: null }, 8, 2_000);
    first.persistOutcome("t2", "aborted", 2_100);
    first.persistOutcome("t3", "aborted", 2_200); // refused to vote: no coordinator known
    first.close();
    const second = GatewayStore.open(dir);
    const rows = second.committedTransactions(64);
    expect(rows).toEqual([{ txn: txn("t1", 50_000), phase: "committed" }]);
    expect(committedToResume(rows, second.planInForce(), 10_000, 4).map((t) => t.txnId)).toEqual(["t1"]);
    second.close();
  });

  it("keeps the newest finished transactions within its bound, and never drops one in doubt", () => {
    const dir = tempDir();
    const limits = { ...DEFAULT_STORE_LIMITS, maxFinishedTxns: 50 };
    const store = GatewayStore.open(dir, limits);
    const txn = (txnId: string) => ({
      txnId,
      coordinator: "@op",
      token: 1,
      participants: ["elm"],
      plan: { planId: "am-peak", version: 2 },
      activationWallMs: 1,
    });
    store.persistPrepared(txn("in-doubt"), { body: null }, 1, 0);
    for (let i = 1; i <= 400; i++) {
      store.persistPrepared(txn(`t${i}`), { body: null }, i + 1, i * 10);
      store.persistOutcome(`t${i}`, i % 3 === 0 ? "aborted" : "committed", i * 10 + 5);
    }
    expect(store.txnsPruned).toBeGreaterThanOrEqual(400 - 50 - 100);
    expect(store.transaction("in-doubt")?.phase).toBe("prepared");
    expect(store.transaction("t400")?.phase).toBe("committed");
    expect(store.transaction("t399")?.phase).toBe("aborted");
    expect(store.transaction("t1")).toBeNull();
    expect(store.lastTransaction()?.txnId).toBe("t400");
    // What a restart reads is still there: the doubt, and the newest tombstones in order.
    store.close();
    const again = GatewayStore.open(dir, limits);
    const record = again.participantRecord(8);
    expect(record.prepared?.txnId).toBe("in-doubt");
    expect(record.tombstones.map((t) => t.txnId)).toEqual([
      "t393",
      "t394",
      "t395",
      "t396",
      "t397",
      "t398",
      "t399",
      "t400",
    ]);
    again.close();
  });

  it("refuses a file that is not a store, and a store from a newer greenwave, saying what to do", () => {
    const dir = tempDir();
    writeFileSync(join(dir, STORE_FILE), "this is not a database, just text that is long enough to matter");
    expect(() => GatewayStore.open(dir)).toThrow(/gateway\.db/);
    const newer = tempDir();
    const db = new Database(join(newer, STORE_FILE));
    db.pragma(`user_version = ${MIGRATIONS.length + 5}`);
    db.close();
    expect(() => GatewayStore.open(newer)).toThrow(StoreError);
    expect(() => GatewayStore.open(newer)).toThrow(/newer than this greenwave knows/);
  });

  it("bounds the coordinator's log to its newest ended transactions, and keeps every unfinished commit", () => {
    const dir = tempDir();
    const log = CoordinatorStore.open(dir, 50);
    const entry = (txnId: string) => ({
      txnId,
      corridor: "main-street",
      coordinator: "@op",
      participants: ["elm", "oak"],
      planId: "am-peak",
      planVersion: 2,
      activationWallMs: 1,
      tokens: { elm: 1, oak: 1 },
    });
    log.persistCommit(entry("unfinished"), 0);
    for (let i = 1; i <= 400; i++) {
      if (i % 4 === 0) log.persistEnd({ ...entry(`t${i}`), outcome: "aborted" }, i);
      else {
        log.persistCommit(entry(`t${i}`), i);
        log.persistEnd({ ...entry(`t${i}`), outcome: "committed" }, i);
      }
    }
    expect(log.endedCount()).toBeLessThanOrEqual(150);
    expect(log.outcomeOf("t399")).toBe("committed");
    expect(log.outcomeOf("t400")).toBe("aborted");
    expect(log.outcomeOf("t1")).toBeNull();
    log.close();
    const again = CoordinatorStore.open(dir, 50);
    expect(again.unfinished().map((e) => e.txnId)).toEqual(["unfinished"]);
    again.close();
  });
});
