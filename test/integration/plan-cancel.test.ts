import { afterEach, describe, expect, it } from "vitest";
import { OperatorError } from "../../gateway/operator/operator-client.js";
import { cancelChange, type PushOptions } from "../../gateway/operator/plan-push.js";
import { type CorridorSettings, DEFAULT_CORRIDOR_SETTINGS } from "../../gateway/node/corridor-participant.js";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { Cleanups, pushRig } from "../support/push-rig.js";

/**
 * `plan cancel` over the embedded broker and four real gateways on their SQLite stores (issue 20, item
 * 6). Changes pushed far ahead fill every controller's queue of waiting changes (4), and the next push
 * is refused; a cancel, through the same two-phase commit, takes one back at every intersection, a
 * restart does not bring it back, and the corridor takes a change again. A cancel of a change too close
 * to its instant, of one already cancelled, of an aborted or an unknown transaction is refused, saying why.
 */
const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const MINUTE = 60_000;

/** The rig's corridor on an open broker, with alice's cancel and each gateway's waiting changes. */
async function world(settings?: CorridorSettings) {
  const rig = await pushRig(cleanups, {
    secured: false,
    ...(settings ? { corridorSettings: () => settings } : {}),
  });
  const cancel = (target: string, options: Partial<PushOptions> = {}) =>
    rig.withCoordinator((store) =>
      cancelChange({ ...options, ...rig.alice, target, store, recordTimeoutMs: 1000 }),
    );
  const waiting = () =>
    [...rig.corridor.nodes.values()].map((n) => n.runner.controller.seq.pending.map((p) => p.txnId));
  return { ...rig, cancel, waiting };
}

describe("plan cancel over the embedded broker, 4 gateways", () => {
  it("takes back a waiting change everywhere through the two-phase commit, and a restart does not bring it back", async () => {
    const w = await world();
    const far = Date.now() + 60 * MINUTE;
    const pushed: string[] = [];
    for (let k = 0; k < 4; k++) {
      const r = await w.push(k % 2 === 0 ? "next" : "shifted", { atWallMs: far + k * 10 * MINUTE });
      expect(r.outcome, r.reason ?? "").toBe("committed");
      pushed.push(r.txnId);
    }
    for (const queue of w.waiting()) expect(queue).toEqual(pushed);
    // The queue is full: no change can be pushed (before issue 20 nothing could take one back).
    const full = await w.push("next", { atWallMs: far + 50 * MINUTE });
    expect(full.outcome).toBe("aborted");
    expect(full.reason).toMatch(/4 plan changes already wait/);

    const [first, second] = pushed as [string, string];
    const cancelled = await w.cancel(first);
    expect(cancelled.outcome, cancelled.reason ?? "").toBe("committed");
    expect(cancelled.plan).toMatchObject({ kind: "cancel", cancels: first });
    expect(cancelled.votes.map((v) => v.vote)).toEqual(["yes", "yes", "yes", "yes"]);
    await until("the change taken back everywhere", 5000, () =>
      w.waiting().every((queue) => !queue.includes(first)),
    );
    for (const queue of w.waiting()) expect(queue).toEqual(pushed.slice(1));
    for (const store of w.corridor.stores.values())
      expect(store.transaction(first)).toMatchObject({ phase: "committed", cancelledBy: cancelled.txnId });

    // A restart hands the controller every committed change still ahead: not the cancelled one.
    await w.corridor.kill("x2");
    const x2 = await w.corridor.restart("x2");
    await until("x2 resumed its waiting changes", 5000, () => x2.runner.controller.seq.pending.length === 3);
    expect(x2.runner.controller.seq.pending.map((p) => p.txnId).sort()).toEqual(pushed.slice(1).sort());

    // There is room again.
    const again = await w.push("next", { atWallMs: far + 50 * MINUTE });
    expect(again.outcome, again.reason ?? "").toBe("committed");

    // Refused, saying why: a cancel already cancelled; an aborted transaction; an unknown one.
    const twice = await w.cancel(first);
    expect(twice.outcome).toBe("aborted");
    expect(twice.reason).toMatch(
      new RegExp(`transaction ${first} was already cancelled at x\\d by transaction`),
    );
    await expect(w.cancel(full.txnId)).rejects.toThrow(/was aborted: it has no change to cancel/);
    await expect(w.cancel("alice-nothing-0000")).rejects.toThrow(OperatorError);
    await expect(w.cancel("alice-nothing-0000")).rejects.toThrow(
      /no decision record of transaction alice-nothing-0000/,
    );
    expect(w.waiting()[0]).toContain(second);
  }, 90_000);

  it("holds the change back while a cancel of it is in doubt (also across a restart), and hands it over again when the cancel aborts", async () => {
    const w = await world();
    const target = await w.push("next", { atWallMs: Date.now() + 60 * MINUTE });
    expect(target.outcome, target.reason ?? "").toBe("committed");
    for (const queue of w.waiting()) expect(queue).toEqual([target.txnId]);
    // The cancel's coordinator dies after its PREPAREs: every gateway is in doubt about the cancel.
    const halted = await w.cancel(target.txnId, { haltAfter: "prepare-sent" });
    expect(halted.outcome).toBe("halted");
    await until("every gateway in doubt about the cancel", 5000, () =>
      [...w.corridor.nodes.values()].every((n) => n.participant.inDoubt?.txnId === halted.txnId),
    );
    // Held back: entered now and cancelled later, it would run at one intersection alone.
    await until("the change held back everywhere", 5000, () => w.waiting().every((q) => q.length === 0));
    await w.corridor.kill("x3");
    const x3 = await w.corridor.restart("x3");
    expect(x3.participant.inDoubt?.txnId).toBe(halted.txnId);
    expect(x3.runner.controller.seq.pending).toEqual([]);
    // The coordinator comes back: no commit in its log, so the cancel aborts, and the change is back.
    expect(await w.recover()).toEqual([]);
    await until("the change handed over again everywhere", 15_000, () =>
      w.waiting().every((q) => q.length === 1 && q[0] === target.txnId),
    );
  }, 60_000);

  it("refuses to cancel a change too close to its instant: the decision might not reach every gateway before it", async () => {
    // The gateways' lead for an instant (a PREPARE's, and a cancel's target's): 1 s while the change
    // is pushed, then longer than the change's instant is away, as if the cancel came that late.
    let minLeadMs = 1000;
    const w = await world({
      ...DEFAULT_CORRIDOR_SETTINGS,
      get minLeadMs() {
        return minLeadMs;
      },
    });
    const soon = await w.push("next", { leadMs: 3000 });
    expect(soon.outcome, soon.reason ?? "").toBe("committed");
    minLeadMs = 10 * MINUTE;
    const refused = await w.cancel(soon.txnId);
    expect(refused.outcome).toBe("aborted");
    expect(refused.reason).toMatch(new RegExp(`too late to cancel ${soon.txnId}`));
    expect(w.waiting().every((queue) => queue.includes(soon.txnId))).toBe(true);
  }, 60_000);
});
