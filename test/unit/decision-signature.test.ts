import { describe, expect, it } from "vitest";
import {
  type ParticipantEvent,
  type PreparedTxn,
  startParticipant,
  stepParticipant,
} from "../../gateway/core/corridor/participant.js";
import {
  checkDecision,
  newDecisionKeyPair,
  signDecision,
} from "../../gateway/shell/corridor/decision-keys.js";

/**
 * Signed decisions (issue 20, item 2): what a coordinator run's signature proves, and what the
 * participant takes as its coordinator's decision.
 */

const keys = newDecisionKeyPair();
const txn: PreparedTxn = {
  txnId: "alice-1",
  coordinator: "@alice",
  token: 7,
  participants: ["elm", "oak"],
  plan: { planId: "am-peak", version: 2, digest: "d".repeat(64) },
  activationWallMs: 1_800_000_000_000,
  decisionKey: keys.publicKey,
};

describe("a decision's signature", () => {
  it("verifies for its transaction and outcome only, with its run's key only", () => {
    const committed = signDecision(keys, txn, "committed");
    expect(checkDecision(txn, keys.publicKey, "committed", committed)).toBe("valid");
    expect(checkDecision(txn, keys.publicKey, "aborted", committed)).toBe("invalid");
    expect(checkDecision({ ...txn, txnId: "alice-2" }, keys.publicKey, "committed", committed)).toBe(
      "invalid",
    );
    expect(
      checkDecision(
        { ...txn, plan: { ...txn.plan, digest: "e".repeat(64) } },
        keys.publicKey,
        "committed",
        committed,
      ),
    ).toBe("invalid");
    expect(checkDecision({ ...txn, coordinator: "elm" }, keys.publicKey, "committed", committed)).toBe(
      "invalid",
    );
    // Another run's key (another transaction's): its signature proves nothing here.
    const other = newDecisionKeyPair();
    expect(checkDecision(txn, other.publicKey, "committed", committed)).toBe("invalid");
    expect(checkDecision(txn, keys.publicKey, "committed", signDecision(other, txn, "committed"))).toBe(
      "invalid",
    );
    // Garbage where a key or a signature should be: refused, never thrown.
    expect(checkDecision(txn, "A".repeat(43), "committed", committed)).toBe("invalid");
    expect(checkDecision(txn, keys.publicKey, "committed", "not base64 at all")).toBe("invalid");
    expect(checkDecision(txn, keys.publicKey, "committed", null)).toBe("absent");
    expect(checkDecision(txn, null, "committed", committed)).toBe("absent");
  });

  it("is the same for the same seed (the simulator's replay), and differs across seeds", () => {
    const seed = Buffer.alloc(32, 1);
    expect(newDecisionKeyPair(seed).publicKey).toBe(newDecisionKeyPair(seed).publicKey);
    expect(newDecisionKeyPair(Buffer.alloc(32, 2)).publicKey).not.toBe(newDecisionKeyPair(seed).publicKey);
    expect(newDecisionKeyPair(seed).publicKey).toMatch(/^[\w-]{43}$/);
  });
});

describe("the participant takes its coordinator's decision only", () => {
  const prepared = stepParticipant(
    startParticipant("elm", { highestToken: 0, prepared: null, tombstones: [] }, 0),
    {
      type: "prepare",
      txn,
      verdict: { ok: true },
      lastIssuedToken: 7,
      lease: { holder: "@alice", token: 7 },
    },
    0,
  ).state;
  const decide = (event: Omit<Extract<ParticipantEvent, { type: "decision" }>, "type" | "txnId">) =>
    stepParticipant(prepared, { type: "decision", txnId: txn.txnId, ...event }, 1_000);

  it("refuses an unsigned COMMIT even in the coordinator's name, once its PREPARE carried a key", () => {
    const forged = decide({
      outcome: "committed",
      via: "decision",
      by: "@alice",
      signature: null,
      proof: "absent",
    });
    expect(forged.state.prepared?.txnId).toBe(txn.txnId);
    expect(forged.effects).toEqual([
      {
        type: "report",
        message: expect.stringMatching(/carries no signature, and its PREPARE came with a decision key/),
      },
    ]);
  });

  it("takes the coordinator's own unsigned abort (it restarted before deciding: presumed abort)", () => {
    const presumed = decide({
      outcome: "aborted",
      via: "answer",
      by: "@alice",
      signature: null,
      proof: "absent",
    });
    expect(presumed.state.prepared).toBeNull();
    expect(presumed.effects[0]).toMatchObject({
      type: "persist-outcome",
      outcome: "aborted",
      signature: null,
    });
  });

  it("takes a signed COMMIT from anyone who relays it, keeps the signature and forwards it", () => {
    const signature = signDecision(keys, txn, "committed");
    const relayed = decide({ outcome: "committed", via: "record", by: "oak", signature, proof: "valid" });
    expect(relayed.state.prepared).toBeNull();
    expect(relayed.effects.map((e) => e.type)).toEqual(["persist-outcome", "apply-plan", "report"]);
    expect(relayed.effects[0]).toMatchObject({ forced: true, signature });
    const asked = stepParticipant(relayed.state, { type: "inquiry", txnId: txn.txnId, from: "cedar" }, 2_000);
    expect(asked.effects).toEqual([
      { type: "answer-inquiry", to: "cedar", txnId: txn.txnId, answer: "committed", signature },
    ]);
  });

  it("refuses a signature that does not verify, whoever sends it, and reports it", () => {
    for (const by of ["@alice", "oak", "pine"]) {
      const step = decide({ outcome: "committed", via: "decision", by, signature: "x", proof: "invalid" });
      expect(step.state).toBe(prepared);
      expect(step.effects).toEqual([
        {
          type: "report",
          message: expect.stringMatching(/does not verify with the coordinator's decision key/),
        },
      ]);
    }
  });
});
