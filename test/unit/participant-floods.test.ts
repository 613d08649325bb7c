import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  MAX_TOMBSTONES,
  outcomeOf,
  type ParticipantState,
  type PreparedTxn,
  startParticipant,
  stepParticipant,
} from "../../gateway/core/corridor/participant.js";
import { InvariantViolation } from "../../gateway/core/invariant.js";
import { DEFAULT_STORE_LIMITS, GatewayStore } from "../../gateway/store/store.js";

/**
 * What the corridor simulator's floods found (issue 12): inquiries about made-up transactions pushed
 * real outcomes out of a participant's memory, and a bystander's "aborted" ended a participant's doubt.
 */

const txn: PreparedTxn = {
  txnId: "op-1",
  coordinator: "@alice",
  token: 7,
  participants: ["elm", "oak"],
  plan: { planId: "am-peak", version: 1 },
  activationWallMs: 1_000_000,
};

function committedAtElm(): ParticipantState {
  let state = startParticipant("elm", { highestToken: 0, prepared: null, tombstones: [] }, 0);
  state = stepParticipant(
    state,
    {
      type: "prepare",
      txn,
      verdict: { ok: true },
      lastIssuedToken: 7,
      lease: { holder: txn.coordinator, token: txn.token },
    },
    0,
  ).state;
  return stepParticipant(
    state,
    { type: "decision", txnId: txn.txnId, outcome: "committed", source: "coordinator", by: "@alice" },
    10,
  ).state;
}

describe("a participant under a flood of inquiries", () => {
  it("never forgets a real outcome for refusals of made-up transactions, however many", () => {
    let state = committedAtElm();
    for (let i = 0; i < 20 * MAX_TOMBSTONES; i++)
      state = stepParticipant(state, { type: "inquiry", txnId: `made-up-${i}`, from: "pine" }, 20 + i).state;
    expect(outcomeOf(state, txn.txnId)).toBe("committed");
    expect(state.refusals.length).toBe(MAX_TOMBSTONES);
    // A resent COMMIT is acknowledged as committed, and an inquiry about it answered so.
    const resent = stepParticipant(
      state,
      { type: "decision", txnId: txn.txnId, outcome: "committed", source: "coordinator", by: "@alice" },
      99_999,
    );
    expect(resent.effects).toEqual([{ type: "ack", to: "@alice", txnId: txn.txnId, outcome: "committed" }]);
    const asked = stepParticipant(state, { type: "inquiry", txnId: txn.txnId, from: "oak" }, 99_999);
    expect(asked.effects).toEqual([
      { type: "answer-inquiry", to: "oak", txnId: txn.txnId, answer: "committed" },
    ]);
  });

  it("takes the outcome from the transaction's parties only, never from a bystander", () => {
    let state = startParticipant("elm", { highestToken: 0, prepared: null, tombstones: [] }, 0);
    state = stepParticipant(
      state,
      {
        type: "prepare",
        txn,
        verdict: { ok: true },
        lastIssuedToken: 7,
        lease: { holder: txn.coordinator, token: txn.token },
      },
      0,
    ).state;
    const bystander = stepParticipant(
      state,
      { type: "decision", txnId: txn.txnId, outcome: "aborted", source: "peer", by: "pine" },
      5_000,
    );
    expect(bystander.state.prepared?.txnId).toBe(txn.txnId);
    expect(bystander.effects.map((e) => e.type)).toEqual(["report"]);
    const peer = stepParticipant(
      state,
      { type: "decision", txnId: txn.txnId, outcome: "aborted", source: "peer", by: "oak" },
      5_000,
    );
    expect(peer.state.prepared).toBeNull();
    expect(outcomeOf(peer.state, txn.txnId)).toBe("aborted");
  });
});

describe("the store's record of finished transactions", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const open = (maxFinishedTxns = DEFAULT_STORE_LIMITS.maxFinishedTxns) => {
    const dir = mkdtempSync(join(tmpdir(), "greenwave-refusals-"));
    dirs.push(dir);
    return GatewayStore.open(dir, { ...DEFAULT_STORE_LIMITS, maxFinishedTxns });
  };

  it("keeps real outcomes apart from refusals: a restart finds the commit after a flood of refusals", () => {
    const store = open(50);
    store.persistPrepared(txn, { body: null }, txn.token, 1);
    store.persistOutcome(txn.txnId, "committed", 2);
    for (let i = 0; i < 1000; i++) store.persistOutcome(`made-up-${i}`, "aborted", 3 + i);
    const record = store.participantRecord(MAX_TOMBSTONES);
    expect(record.tombstones).toEqual([{ txnId: txn.txnId, outcome: "committed" }]);
    expect(record.refusals.length).toBeLessThanOrEqual(150);
    expect(record.refusals.at(-1)).toBe("made-up-999");
    expect(store.transaction(txn.txnId)?.phase).toBe("committed");
    store.close();
  });

  it("never overwrites a finished outcome with another", () => {
    const store = open();
    store.persistPrepared(txn, { body: null }, txn.token, 1);
    store.persistOutcome(txn.txnId, "committed", 2);
    store.persistOutcome(txn.txnId, "committed", 3); // the same again: nothing changes
    expect(() => store.persistOutcome(txn.txnId, "aborted", 4)).toThrow(InvariantViolation);
    expect(store.transaction(txn.txnId)?.phase).toBe("committed");
    store.close();
  });
});
