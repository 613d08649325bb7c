import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import type { PreparedTxn } from "../../gateway/core/corridor/participant.js";
import type { ManualOverride } from "../../gateway/core/schedule/schedule-runner.js";
import { GatewayStore, STORE_FILE } from "../../gateway/store/store.js";

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-store-schedule-"));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const txn = (txnId: string, until?: number | "hold"): PreparedTxn => ({
  txnId,
  coordinator: "@alice",
  token: 7,
  participants: ["elm", "oak"],
  plan: { planId: "am-peak", version: 2, ...(until !== undefined ? { until } : {}) },
  activationWallMs: 50_000,
});

describe("the store's schedule records (SQLite on disk)", () => {
  it("keeps the schedule in force and the manual override across a restart", () => {
    const dir = tempDir();
    const override: ManualOverride = {
      planId: "am-peak",
      version: 2,
      fromWallMs: 1_000,
      end: { kind: "until", untilWallMs: 9_000 },
      by: "@alice",
    };
    const first = GatewayStore.open(dir);
    expect(first.scheduleInForce()).toBeNull();
    first.setScheduleInForce({
      scheduleKey: "schedule:weekly",
      version: 3,
      fromWallMs: 500,
      override,
      taken: ["t1", "t2"],
    });
    first.close();
    const second = GatewayStore.open(dir);
    expect(second.scheduleInForce()).toEqual({
      scheduleKey: "schedule:weekly",
      version: 3,
      fromWallMs: 500,
      override,
      taken: ["t1", "t2"],
    });
    second.close();
  });

  it("reads a damaged override as none, not as a crash", () => {
    const dir = tempDir();
    const store = GatewayStore.open(dir);
    store.setScheduleInForce({ scheduleKey: "schedule:weekly", version: 1, fromWallMs: 0, override: null });
    store.close();
    const db = new Database(join(dir, STORE_FILE));
    db.prepare("UPDATE schedule_in_force SET override = ?").run(
      JSON.stringify({ planId: "x", end: { kind: "forever" } }),
    );
    db.close();
    const reopened = GatewayStore.open(dir);
    expect(reopened.scheduleInForce()?.override).toBeNull();
    reopened.close();
  });

  it("a manual change's end travels with its transaction through PREPARED and the commit", () => {
    const dir = tempDir();
    const first = GatewayStore.open(dir);
    first.persistPrepared(txn("t1", 9_000), { body: null }, 7, 1_000);
    first.persistOutcome("t1", "committed", 1_100);
    first.persistPrepared(txn("t2", "hold"), { body: null }, 8, 2_000);
    first.persistOutcome("t2", "committed", 2_100);
    first.persistPrepared(txn("t3"), { body: null }, 9, 3_000);
    first.close();
    const second = GatewayStore.open(dir);
    const committed = second.committedTransactions(10).map((s) => [s.txn.txnId, s.txn.plan.until]);
    expect(committed).toEqual([
      ["t2", "hold"],
      ["t1", 9_000],
    ]);
    expect(second.participantRecord(10).prepared?.plan).toEqual({ planId: "am-peak", version: 2 });
    second.close();
  });
});
