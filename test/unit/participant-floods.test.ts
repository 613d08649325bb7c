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
    {
      type: "decision",
      txnId: txn.txnId,
      outcome: "committed",
      via: "decision",
      by: "@alice",
      signature: null,
      proof: "absent",
    },
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
      {
        type: "decision",
        txnId: txn.txnId,
        outcome: "committed",
        via: "decision",
        by: "@alice",
        signature: null,
        proof: "absent",
      },
      99_999,
    );
    expect(resent.effects).toEqual([{ type: "ack", to: "@alice", txnId: txn.txnId, outcome: "committed" }]);
    const asked = stepParticipant(state, { type: "inquiry", txnId: txn.txnId, from: "oak" }, 99_999);
    expect(asked.effects).toEqual([
      { type: "answer-inquiry", to: "oak", txnId: txn.txnId, answer: "committed", signature: null },
    ]);
  });

  it("takes the outcome from its coordinator only: neither a bystander's nor a participant's own word ends the doubt", () => {
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
      {
        type: "decision",
        txnId: txn.txnId,
        outcome: "aborted",
        via: "answer",
        by: "pine",
        signature: null,
        proof: "absent",
      },
      5_000,
    );
    expect(bystander.state.prepared?.txnId).toBe(txn.txnId);
    expect(bystander.effects.map((e) => e.type)).toEqual(["report"]);
    // A participant may lie about its own vote (it voted yes, and says it never did): its word alone
    // is no decision; the coordinator's signed decision, forwarded by it, is.
    const unsignedPeer = stepParticipant(
      state,
      {
        type: "decision",
        txnId: txn.txnId,
        outcome: "aborted",
        via: "answer",
        by: "oak",
        signature: null,
        proof: "absent",
      },
      5_000,
    );
    expect(unsignedPeer.state.prepared?.txnId).toBe(txn.txnId);
    expect(unsignedPeer.effects.map((e) => e.type)).toEqual(["report"]);
    const forged = stepParticipant(
      state,
      {
        type: "decision",
        txnId: txn.txnId,
        outcome: "committed",
        via: "decision",
        by: txn.coordinator,
        signature: "x",
        proof: "invalid",
      },
      5_000,
    );
    expect(forged.state.prepared?.txnId).toBe(txn.txnId);
    const peer = stepParticipant(
      state,
      {
        type: "decision",
        txnId: txn.txnId,
        outcome: "aborted",
        via: "answer",
        by: "oak",
        signature: "signed-by-the-coordinator",
        proof: "valid",
      },
      5_000,
    );
    expect(peer.state.prepared).toBeNull();
    expect(outcomeOf(peer.state, txn.txnId)).toBe("aborted");
    // Kept with the outcome, and forwarded intact to whoever asks.
    const asked = stepParticipant(peer.state, { type: "inquiry", txnId: txn.txnId, from: "pine" }, 6_000);
    expect(asked.effects).toEqual([
      {
        type: "answer-inquiry",
        to: "pine",
        txnId: txn.txnId,
        answer: "aborted",
        signature: "signed-by-the-coordinator",
      },
    ]);
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
    expect(record.tombstones).toEqual([
      { txnId: txn.txnId, outcome: "committed", coordinator: txn.coordinator },
    ]);
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
