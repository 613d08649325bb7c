import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  resumeCommitted,
  startCoordinator,
  stepCoordinator,
  DEFAULT_COORDINATOR_CONFIG,
} from "../../gateway/core/corridor/coordinator.js";
import {
  fencingFloor,
  startLeaseAuthority,
  stepLeaseAuthority,
  TOKENS_PER_EPOCH,
} from "../../gateway/core/corridor/lease.js";
import {
  startParticipant,
  stepParticipant,
  type PreparedTxn,
} from "../../gateway/core/corridor/participant.js";
import { CorridorHarness } from "../support/corridor-harness.js";

const EIGHT = ["a", "b", "c", "d", "e", "f", "g", "h"];

function durableAuthority(lastEpoch: number) {
  const started = startLeaseAuthority(lastEpoch);
  expect(started.effects).toEqual([{ type: "persist-epoch", epoch: lastEpoch + 1 }]);
  return stepLeaseAuthority(started.state, { type: "epoch-durable" }, 0).state;
}

describe("lease authority", () => {
  it("hands out nothing before its epoch is durable", () => {
    const { state } = startLeaseAuthority(0);
    const step = stepLeaseAuthority(state, { type: "acquire", holder: "op", requestId: "r", ttlMs: 5000 }, 0);
    expect(step.effects).toEqual([
      { type: "reply", to: "op", reply: expect.objectContaining({ type: "unavailable" }) },
    ]);
  });

  it("grants one holder at a time, answers a duplicated request with the same grant, and expires on its own clock", () => {
    let s = durableAuthority(0);
    const first = stepLeaseAuthority(
      s,
      { type: "acquire", holder: "op1", requestId: "r1", ttlMs: 5000 },
      1000,
    );
    s = first.state;
    const token = s.lease?.token as number;
    expect(token).toBe(TOKENS_PER_EPOCH + 1);
    const again = stepLeaseAuthority(
      s,
      { type: "acquire", holder: "op1", requestId: "r1", ttlMs: 5000 },
      1500,
    );
    expect(again.effects[0]).toMatchObject({ reply: { type: "granted", token } });
    const other = stepLeaseAuthority(
      s,
      { type: "acquire", holder: "op2", requestId: "r2", ttlMs: 5000 },
      2000,
    );
    expect(other.effects[0]).toMatchObject({ reply: { type: "denied", holder: "op1", retryAfterMs: 4000 } });
    const renewed = stepLeaseAuthority(s, { type: "renew", holder: "op1", token, ttlMs: 5000 }, 5000);
    expect(renewed.effects[0]).toMatchObject({ reply: { type: "renewed", token } });
    s = renewed.state;
    const late = stepLeaseAuthority(s, { type: "renew", holder: "op1", token, ttlMs: 5000 }, 10_000);
    expect(late.effects[0]).toMatchObject({ reply: { type: "lost", reason: "expired" } });
    const next = stepLeaseAuthority(
      s,
      { type: "acquire", holder: "op2", requestId: "r3", ttlMs: 5000 },
      10_000,
    );
    expect(next.state.lease?.token).toBe(token + 1);
  });

  it("never hands out a token twice, across any number of restarts", () => {
    fc.assert(
      fc.property(fc.array(fc.nat(5), { minLength: 1, maxLength: 20 }), (grantsPerLife) => {
        let epoch = 0;
        let last = 0;
        for (const grants of grantsPerLife) {
          let s = durableAuthority(epoch);
          epoch = s.epoch;
          for (let i = 0; i < grants; i++) {
            const step = stepLeaseAuthority(
              s,
              { type: "acquire", holder: `h${i}`, requestId: `r${i}`, ttlMs: 1000 },
              i * 2000,
            );
            s = step.state;
            const token = s.lease?.token as number;
            expect(token).toBeGreaterThan(last);
            last = token;
          }
        }
      }),
    );
  });
});

describe("participant", () => {
  const txn = (id: string, token: number, coordinator = "op"): PreparedTxn => ({
    txnId: id,
    coordinator,
    token,
    participants: ["a", "b"],
    plan: { planId: "am-peak", version: 2 },
    activationWallMs: 1000,
  });
  const fresh = () => startParticipant("a", { highestToken: 0, prepared: null, tombstones: [] }, 0);

  it("force-writes PREPARED before voting yes", () => {
    const step = stepParticipant(
      fresh(),
      {
        type: "prepare",
        txn: txn("t1", 5),
        verdict: { ok: true },
        lastIssuedToken: 5,
        lease: { holder: "op", token: 5 },
      },
      0,
    );
    expect(step.effects.map((e) => e.type)).toEqual(["persist-prepared", "vote"]);
    expect(step.effects[1]).toMatchObject({ yes: true });
  });

  it("refuses a token older than one it has seen or its authority issued, and says why", () => {
    const stale = stepParticipant(
      fresh(),
      {
        type: "prepare",
        txn: txn("t1", 5),
        verdict: { ok: true },
        lastIssuedToken: 6,
        lease: { holder: "op", token: 5 },
      },
      0,
    );
    expect(stale.effects).toEqual([
      expect.objectContaining({
        type: "vote",
        yes: false,
        reason: expect.stringContaining("fencing token 5 is older than 6"),
      }),
    ]);
  });

  it("refuses a token granted before its authority restarted (found by the simulator, seed 1554)", () => {
    // Token 7 of epoch 1 was granted, then the gateway restarted: epoch 2 holds no lease, so token 7
    // names nothing, even though nothing newer was handed out yet.
    const granted = TOKENS_PER_EPOCH + 7;
    const restarted = durableAuthority(1);
    expect(restarted.lastToken).toBe(0);
    expect(fencingFloor(restarted)).toBe(2 * TOKENS_PER_EPOCH);
    const step = stepParticipant(
      fresh(),
      {
        type: "prepare",
        txn: txn("t1", granted),
        verdict: { ok: true },
        lastIssuedToken: fencingFloor(restarted),
        lease: { holder: "op", token: granted },
      },
      0,
    );
    expect(step.effects).toEqual([
      expect.objectContaining({ type: "vote", yes: false, reason: expect.stringContaining("restarted") }),
    ]);
  });

  it("refuses a token its own authority never granted the coordinator, and keeps its floor (issue 20, item 1)", () => {
    // elm's credentials send a PREPARE with a made-up token: voted down, and the floor stays where it
    // was, so later legitimate pushes are not blocked for good.
    const madeUp = stepParticipant(
      fresh(),
      {
        type: "prepare",
        txn: txn("t1", Number.MAX_SAFE_INTEGER, "elm"),
        verdict: { ok: true },
        lastIssuedToken: 5,
        lease: { holder: "op", token: 5 },
      },
      0,
    );
    expect(madeUp.effects).toEqual([
      expect.objectContaining({
        type: "vote",
        yes: false,
        reason: expect.stringContaining(`fencing token ${Number.MAX_SAFE_INTEGER} was not granted to elm`),
      }),
    ]);
    expect(madeUp.state.highestToken).toBe(0);
    const later = stepParticipant(
      madeUp.state,
      {
        type: "prepare",
        txn: txn("t2", 5),
        verdict: { ok: true },
        lastIssuedToken: 5,
        lease: { holder: "op", token: 5 },
      },
      0,
    );
    expect(later.effects.at(-1)).toMatchObject({ type: "vote", yes: true });
    // The holder's real token, sent by someone else; and any token while no lease is held.
    for (const [coordinator, lease] of [
      ["elm", { holder: "op", token: 5 }],
      ["op", null],
    ] as const) {
      const step = stepParticipant(
        fresh(),
        { type: "prepare", txn: txn("t3", 5, coordinator), verdict: { ok: true }, lastIssuedToken: 5, lease },
        0,
      );
      expect(step.effects).toEqual([expect.objectContaining({ type: "vote", yes: false })]);
      expect(step.state.highestToken).toBe(0);
    }
  });

  it("refuses a second change while in doubt, and a plan its checks rejected", () => {
    const prepared = stepParticipant(
      fresh(),
      {
        type: "prepare",
        txn: txn("t1", 5),
        verdict: { ok: true },
        lastIssuedToken: 5,
        lease: { holder: "op", token: 5 },
      },
      0,
    ).state;
    const second = stepParticipant(
      prepared,
      {
        type: "prepare",
        txn: txn("t2", 7, "op2"),
        verdict: { ok: true },
        lastIssuedToken: 7,
        lease: { holder: "op2", token: 7 },
      },
      0,
    );
    expect(second.effects[0]).toMatchObject({
      yes: false,
      reason: expect.stringContaining("in doubt about transaction t1"),
    });
    const bad = stepParticipant(
      fresh(),
      {
        type: "prepare",
        txn: txn("t3", 5),
        verdict: { ok: false, reason: "splits sum to 95 s" },
        lastIssuedToken: 5,
        lease: { holder: "op", token: 5 },
      },
      0,
    );
    expect(bad.effects).toEqual([expect.objectContaining({ yes: false, reason: "splits sum to 95 s" })]);
  });

  it("having voted yes, never aborts on its own: it only asks, with back-off", () => {
    let s = stepParticipant(
      fresh(),
      {
        type: "prepare",
        txn: txn("t1", 5),
        verdict: { ok: true },
        lastIssuedToken: 5,
        lease: { holder: "op", token: 5 },
      },
      0,
    ).state;
    const asks: number[] = [];
    for (let t = 0; t <= 3_600_000; t += 100) {
      const step = stepParticipant(s, { type: "tick" }, t);
      s = step.state;
      for (const e of step.effects) {
        expect(e.type).toBe("ask-decision");
        asks.push(t);
      }
    }
    expect(s.prepared?.txnId).toBe("t1");
    expect(asks.length).toBeGreaterThan(100);
    expect(asks.length).toBeLessThan(200); // backed off to the cap
  });

  it("applies the commit once however often it comes, and acknowledges each copy", () => {
    let s = stepParticipant(
      fresh(),
      {
        type: "prepare",
        txn: txn("t1", 5),
        verdict: { ok: true },
        lastIssuedToken: 5,
        lease: { holder: "op", token: 5 },
      },
      0,
    ).state;
    const commit = {
      type: "decision",
      txnId: "t1",
      outcome: "committed",
      via: "decision",
      by: "op",
      signature: null,
      proof: "absent",
    } as const;
    const first = stepParticipant(s, commit, 10);
    expect(first.effects.map((e) => e.type)).toEqual(["persist-outcome", "apply-plan", "ack"]);
    s = first.state;
    const dup = stepParticipant(s, commit, 20);
    expect(dup.effects.map((e) => e.type)).toEqual(["ack"]);
    const latePrepare = stepParticipant(
      s,
      {
        type: "prepare",
        txn: txn("t1", 5),
        verdict: { ok: true },
        lastIssuedToken: 5,
        lease: { holder: "op", token: 5 },
      },
      30,
    );
    expect(latePrepare.effects).toEqual([expect.objectContaining({ type: "vote", yes: true })]);
  });

  it("answers a peer's inquiry about a transaction it never voted on by aborting it, durably", () => {
    const step = stepParticipant(fresh(), { type: "inquiry", txnId: "t9", from: "b" }, 0);
    expect(step.effects).toEqual([
      { type: "persist-outcome", txnId: "t9", outcome: "aborted", forced: true, signature: null },
      { type: "answer-inquiry", to: "b", txnId: "t9", answer: "aborted", signature: null },
    ]);
    const late = stepParticipant(
      step.state,
      {
        type: "prepare",
        txn: txn("t9", 5),
        verdict: { ok: true },
        lastIssuedToken: 5,
        lease: { holder: "op", token: 5 },
      },
      1,
    );
    expect(late.effects[0]).toMatchObject({ yes: false });
  });
});

describe("coordinator", () => {
  it("sends no PREPARE on a lease that ran out in its own view while it waited: it starts over", () => {
    const config = { ...DEFAULT_COORDINATOR_CONFIG, leaseTtlMs: 3000 };
    let s = startCoordinator(config, {
      txnId: "t1",
      coordinator: "op",
      participants: ["a", "b"],
      plan: { planId: "am-peak", version: 1 },
      activationWallMs: 60_000,
    });
    s = stepCoordinator(s, { type: "start" }, 0).state;
    const requestId = (id: string) => s.pending[id]?.requestId ?? "";
    const grant = (from: string, token: number, at: number) =>
      stepCoordinator(
        s,
        {
          type: "lease-reply",
          from,
          reply: { type: "granted", requestId: requestId(from), token, ttlMs: 3000 },
        },
        at,
      );
    s = grant("a", 11, 10).state;
    // b's grant is processed 4 s later (a stall): a's lease, requested at 0 with a 3 s TTL, is gone.
    const late = grant("b", 12, 4000);
    expect(late.effects.some((e) => e.type === "send" && e.message.type === "prepare")).toBe(false);
    expect(late.effects.filter((e) => e.type === "send").map((e) => e.type === "send" && e.message)).toEqual([
      { type: "release", token: 11 },
      { type: "release", token: 12 },
    ]);
    expect(late.state.phase).toBe("backing-off");
    expect(late.state.reason).toContain("ran out before PREPARE");
  });
});

describe("two-phase commit over 8 intersections (in memory)", () => {
  it("commits: leases in canonical order, the commit forced before any COMMIT is sent, every intersection applies it", () => {
    const w = new CorridorHarness(EIGHT);
    const c = w.startCoordinator("op", [...EIGHT].reverse(), "t1");
    w.settle();
    expect(c.finished).toEqual({ outcome: "committed", reason: null });
    for (const node of w.nodes.values()) {
      expect(node.applied.map((t) => t.txnId)).toEqual(["t1"]);
      expect(node.authority.lease).toBeNull(); // released
    }
    const acquires = w.trace
      .filter((l) => l.includes(" send ") && l.includes(" acquire"))
      .map((l) => l.split("->")[1]?.split(" ")[0]);
    expect(acquires).toEqual(EIGHT);
  });

  it("aborts on one no vote, with its reason; nobody applies the plan", () => {
    const w = new CorridorHarness(EIGHT);
    w.verdict = (node) =>
      node === "e" ? { ok: false, reason: "clock error 800 ms above the corridor's bound" } : { ok: true };
    const c = w.startCoordinator("op", EIGHT, "t1");
    w.settle();
    expect(c.finished?.outcome).toBe("aborted");
    expect(c.finished?.reason).toContain("e voted no: clock error");
    expect(c.committed).toBe(false);
    for (const node of w.nodes.values()) {
      expect(node.applied).toEqual([]);
      expect(node.participant.prepared).toBeNull();
    }
  });

  it("aborts when a participant never answers; the others are released from doubt", () => {
    const w = new CorridorHarness(EIGHT);
    w.lose = (m) => m.kind === "vote" && m.from === "c";
    const c = w.startCoordinator("op", EIGHT, "t1");
    w.settle();
    expect(c.finished?.reason).toContain("no vote from c");
    for (const node of w.nodes.values()) expect(node.applied).toEqual([]);
    expect([...w.nodes.values()].every((n) => n.participant.prepared === null)).toBe(true);
  });

  it("two coordinators racing for overlapping corridors: their changes never interleave on a shared intersection", () => {
    const w = new CorridorHarness(EIGHT);
    const one = w.startCoordinator("op1", ["a", "b", "c", "d", "e"], "t1");
    const two = w.startCoordinator("op2", ["d", "e", "f", "g", "h"], "t2");
    w.settle(120_000);
    expect(one.finished).not.toBeNull();
    expect(two.finished).not.toBeNull();
    for (const id of ["d", "e"]) {
      const applied = w.nodes.get(id)?.applied ?? [];
      // Each shared intersection took the committed changes one after the other, newest token last.
      for (let i = 1; i < applied.length; i++)
        expect(applied[i]?.token).toBeGreaterThan(applied[i - 1]?.token ?? 0);
    }
    for (const c of [one, two]) {
      const mine = [...w.nodes.values()].filter((n) => n.applied.some((t) => t.txnId === c.state.txnId));
      expect(mine.length).toBe(c.finished?.outcome === "committed" ? c.state.participants.length : 0);
    }
  });

  it("a coordinator restarted after its decision finishes it from its log", () => {
    const w = new CorridorHarness(EIGHT);
    w.lose = (m) => m.kind === "to-node" && m.message.type === "decision";
    const c = w.startCoordinator("op", EIGHT, "t1");
    w.settle(3000);
    expect(c.committed).toBe(true);
    expect([...w.nodes.values()].every((n) => n.participant.prepared?.txnId === "t1")).toBe(true);
    // The coordinator dies; its log holds the commit and the tokens; a new one resumes it.
    w.lose = () => false;
    const tokens = Object.fromEntries(Object.entries(c.state.leases).map(([id, l]) => [id, l.token]));
    c.state = resumeCommitted(DEFAULT_COORDINATOR_CONFIG, { ...c.state, tokens });
    c.state = stepCoordinator(c.state, { type: "start" }, w.now).state;
    w.advance(2000);
    w.settle();
    for (const node of w.nodes.values()) expect(node.applied.map((t) => t.txnId)).toEqual(["t1"]);
  });

  it("a participant killed after PREPARED and restarted is still in doubt, asks, and ends with the others", () => {
    const w = new CorridorHarness(EIGHT);
    w.lose = (m) => m.kind === "to-node" && m.to === "b" && m.message.type === "decision";
    const c = w.startCoordinator("op", EIGHT, "t1");
    w.settle(3000);
    w.crashNode("b");
    w.lose = () => false;
    w.restartNode("b");
    expect(w.nodes.get("b")?.participant.prepared?.txnId).toBe("t1");
    w.settle();
    expect(c.finished?.outcome).toBe("committed");
    expect(w.nodes.get("b")?.applied.map((t) => t.txnId)).toEqual(["t1"]);
  });

  it("cooperative termination: with the coordinator gone before deciding, a peer's own word that it never voted ends no doubt (it could lie); an operator's resolution does", () => {
    const w = new CorridorHarness(["a", "b", "c"]);
    w.lose = (m) => m.kind === "to-node" && m.to === "c" && m.message.type === "prepare";
    w.startCoordinator("op", ["a", "b", "c"], "t1");
    // The coordinator vanishes before deciding.
    for (let i = 0; i < 40; i++) {
      while (w.queue.length) w.deliver(0);
      w.now += 50;
    }
    w.coordinators.delete("op");
    w.lose = () => false;
    w.settle();
    // c never voted and says so when asked; a and b hear it and stay in doubt: only the coordinator's
    // decision (or an operator's) can end it, so a participant lying about its vote cannot split them.
    expect(w.nodes.get("c")?.participant.prepared).toBeNull();
    for (const id of ["a", "b"]) expect(w.nodes.get(id)?.participant.prepared?.txnId).toBe("t1");
    for (const id of ["a", "b"]) expect(w.nodes.get(id)?.shell.resolve("t1", "aborted", "@op")).toBe(true);
    w.settle();
    for (const node of w.nodes.values()) {
      expect(node.applied).toEqual([]);
      expect(node.participant.prepared).toBeNull();
    }
  });
});

describe("two-phase commit under random delivery, loss, duplication and crashes", () => {
  it("never splits a corridor: whoever applies a change, its coordinator committed it and nobody aborted it", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ pick: fc.nat(1000), dup: fc.boolean(), lose: fc.nat(9), crash: fc.nat(60) }), {
          minLength: 50,
          maxLength: 400,
        }),
        fc.boolean(),
        // A partition: one intersection cut off from everyone for a while.
        fc.record({ node: fc.constantFrom("a", "b", "c", "d"), from: fc.nat(40), steps: fc.nat(250) }),
        (schedule, twoCoordinators, partition) => {
          const w = new CorridorHarness(["a", "b", "c", "d"]);
          let step = 0;
          const cut = (m: { from: string; to: string }) =>
            (m.from === partition.node || m.to === partition.node) &&
            step >= partition.from &&
            step < partition.from + partition.steps;
          w.lose = (m) => cut(m) || (schedule[step % schedule.length]?.lose ?? 9) < 2;
          const config = { voteTimeoutMs: 3000, maxAcquireAttempts: 12 };
          w.startCoordinator("op1", ["a", "b", "c"], "t1", config);
          if (twoCoordinators) w.startCoordinator("op2", ["b", "c", "d"], "t2", config);
          for (const s of schedule) {
            step++;
            if (w.queue.length > 0) {
              const index = s.pick % w.queue.length;
              const message = w.queue[index];
              if (s.dup && message) w.queue.push(message);
              w.deliver(index);
            }
            if (s.crash === 0) {
              const victim = [...w.nodes.values()][s.pick % 4];
              if (victim?.up) w.crashNode(victim.id);
            }
            if (s.crash === 1) for (const n of w.nodes.values()) if (!n.up) w.restartNode(n.id);
            w.advance(137);
          }
          // Heal: everyone up, nothing lost, time passes.
          w.lose = () => false;
          for (const n of w.nodes.values()) if (!n.up) w.restartNode(n.id);
          w.settle(600_000);
          for (const c of w.coordinators.values()) {
            expect(c.finished, `${c.id} finished`).not.toBeNull();
            for (const node of w.nodes.values()) {
              const applied = node.applied.filter((t) => t.txnId === c.state.txnId).length;
              const aborted = node.participant.tombstones.some(
                (t) => t.txnId === c.state.txnId && t.outcome === "aborted",
              );
              if (c.committed) {
                // Atomicity and liveness after healing: every participant applied it exactly once.
                if (c.state.participants.includes(node.id))
                  expect(applied, `${node.id} applied ${c.id}`).toBe(1);
                expect(aborted).toBe(false);
              } else expect(applied).toBe(0);
            }
          }
          for (const node of w.nodes.values()) {
            expect(node.participant.prepared).toBeNull();
            for (let i = 1; i < node.applied.length; i++)
              expect(node.applied[i]?.token).toBeGreaterThan(node.applied[i - 1]?.token ?? 0);
          }
        },
      ),
      { numRuns: 150 },
    );
  }, 120_000);
});
