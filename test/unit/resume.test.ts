import { describe, expect, it } from "vitest";
import type { PreparedTxn } from "../../gateway/core/corridor/participant.js";
import { committedToResume, type StoredTxn } from "../../gateway/core/corridor/resume.js";
import { loadIntersectionSetup } from "../../gateway/config/load.js";
import { hasRoomForPlan, MAX_PENDING_PLANS } from "../../gateway/core/sequencer.js";
import { VirtualIntersection } from "../support/drive.js";

const txn = (txnId: string, activationWallMs: number, planId = "am-peak"): PreparedTxn => ({
  txnId,
  coordinator: "@op",
  token: 1,
  participants: ["elm"],
  plan: { planId, version: 1 },
  activationWallMs,
});
const committed = (t: PreparedTxn): StoredTxn => ({ txn: t, phase: "committed" });

describe("what a restarted participant hands its controller again (found by the simulator, seed 3)", () => {
  it("resumes a committed change even when a later transaction was aborted", () => {
    // Newest first, as the store lists them: t2 aborted after t1 committed. The old rule looked only
    // at the newest transaction and lost t1.
    const rows: StoredTxn[] = [{ txn: txn("t2", 9_000), phase: "aborted" }, committed(txn("t1", 5_000))];
    expect(committedToResume(rows, null, 1_000, MAX_PENDING_PLANS).map((t) => t.txnId)).toEqual(["t1"]);
  });

  it("keeps only the newest change whose instant has passed, and every one still ahead", () => {
    const rows = [txn("t4", 9_000), txn("t3", 7_000), txn("t2", 3_000), txn("t1", 2_000)].map(committed);
    expect(committedToResume(rows, null, 5_000, MAX_PENDING_PLANS).map((t) => t.txnId)).toEqual([
      "t2",
      "t3",
      "t4",
    ]);
  });

  it("skips what the plan in force already entered or superseded, and keeps the last of equal instants", () => {
    const rows = [txn("t4", 8_000), txn("t3", 8_000), txn("t2", 6_000), txn("t1", 2_000)].map(committed);
    const inForce = { planId: "am-peak", version: 1, activationWallMs: 6_000 };
    expect(committedToResume(rows, inForce, 7_000, MAX_PENDING_PLANS).map((t) => t.txnId)).toEqual(["t4"]);
  });

  it("never hands over a cancelled change, nor the older one of the same instant that it superseded", () => {
    // t3 (committed after t2, same instant) superseded t2 when it was handed; a cancel took t3 back:
    // neither runs, as at the gateways that did not restart.
    const rows: StoredTxn[] = [
      { ...committed(txn("t3", 8_000, "pm-peak")), cancelled: true },
      committed(txn("t2", 8_000)),
      committed(txn("t1", 9_000)),
    ];
    expect(committedToResume(rows, null, 1_000, MAX_PENDING_PLANS).map((t) => t.txnId)).toEqual(["t1"]);
  });

  it("never hands over more than the controller takes, dropping the oldest", () => {
    const rows = [1, 2, 3, 4, 5, 6].map((i) => committed(txn(`t${i}`, 10_000 * i))).reverse();
    const kept = committedToResume(rows, null, 0, MAX_PENDING_PLANS).map((t) => t.txnId);
    expect(kept).toEqual(["t3", "t4", "t5", "t6"]);
  });
});

describe("the controller's bounded queue of plan changes", () => {
  const elm = loadIntersectionSetup("config/intersections/elm.yaml");
  const plan = elm.initialPlan;

  it("replaces a waiting plan for the same instant instead of filling up, and says when it is full", () => {
    const x = new VirtualIntersection(elm.intersection.intersection, plan, { monoMs: 0, wallMs: 0 });
    for (let i = 0; i < 6; i++) x.dispatch({ type: "schedule-plan", plan, activationWallMs: 1_000_000 });
    expect(x.state.seq.pending).toHaveLength(1);
    expect(x.signals.filter((s) => s.event.type === "plan-superseded")).toHaveLength(5);
    for (let i = 1; i < MAX_PENDING_PLANS; i++)
      x.dispatch({ type: "schedule-plan", plan, activationWallMs: 1_000_000 + i });
    expect(hasRoomForPlan(x.state.seq, 2_000_000)).toBe(false);
    expect(hasRoomForPlan(x.state.seq, 1_000_000)).toBe(true);
    x.dispatch({ type: "schedule-plan", plan, activationWallMs: 2_000_000 });
    expect(x.signals.at(-1)?.event).toMatchObject({ type: "plan-rejected" });
  });
});

describe("changes for the same instant as the one in force (found by the simulator, seeds 385 and 2837)", () => {
  const at = 600_000;
  const inForce = { planId: "off-peak", version: 1, activationWallMs: at };

  it("skips the instant when its last commit is the plan in force", () => {
    const rows = [txn("t2", at, "off-peak"), txn("t1", at, "am-peak")].map(committed);
    expect(committedToResume(rows, inForce, at + 1, MAX_PENDING_PLANS)).toEqual([]);
  });

  it("resumes a different plan committed for that instant after it was entered (learned late)", () => {
    const rows = [txn("t2", at, "am-peak"), txn("t1", at, "off-peak")].map(committed);
    expect(committedToResume(rows, inForce, at + 1, MAX_PENDING_PLANS).map((t) => t.txnId)).toEqual(["t2"]);
  });
});
