import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_COORDINATOR_CONFIG, startCoordinator } from "../../gateway/core/corridor/coordinator.js";
import { storeCoordinatorLog } from "../../gateway/shell/corridor/coordinator-host.js";
import type { CorridorBody } from "../../gateway/protocol/corridor-messages.js";
import type {
  CoordinatorLog,
  RetainedDecisionRecord,
} from "../../gateway/shell/corridor/coordinator-ports.js";
import { CoordinatorShell } from "../../gateway/shell/corridor/coordinator-shell.js";
import { CoordinatorStore } from "../../gateway/store/coordinator-store.js";
import { newDecisionKeyPair } from "../../gateway/shell/corridor/decision-keys.js";
import { createHash } from "node:crypto";
import { SimCoordinatorLog } from "../../simulators/corridor/sim-coordinator-log.js";

/**
 * The simulator proves the coordinator shell only if its simulated decision log behaves as the
 * coordinator's SQLite log does: one scripted run of the one interpreter over each, and everything
 * observable must agree — messages, retained decisions, what the log answers and what a restart resumes.
 */

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function storeLog(): CoordinatorLog {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-coordinator-divergence-"));
  const store = CoordinatorStore.open(dir);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => store.close());
  return storeCoordinatorLog(store, "@op", "main");
}

function coordinatorOver(log: CoordinatorLog, clock: { monoMs: number; wallMs: number }) {
  const sent: { to: string; body: CorridorBody }[] = [];
  const retained: RetainedDecisionRecord[] = [];
  const shell = new CoordinatorShell({
    me: "@op",
    config: DEFAULT_COORDINATOR_CONFIG,
    log,
    network: { send: (to, body) => sent.push({ to, body }) },
    retain: (record) => retained.push(record),
    clock: { now: () => ({ ...clock }) },
    random01: () => 0.5,
    // The same keys in both runs, so that their signatures compare.
    newDecisionKeys: (txnId) => newDecisionKeyPair(createHash("sha256").update(txnId).digest()),
  });
  return { shell, sent, retained };
}

/** A push to x1 and x2 that commits (x2 has not acknowledged at the end), and one to x3 and x4 that x4 votes down. */
function runScript(c: ReturnType<typeof coordinatorOver>, clock: { monoMs: number; wallMs: number }): void {
  const from = (sender: string, body: CorridorBody) => c.shell.receive({ from: sender, body }, true);
  const grantAll = () => {
    for (const m of c.sent.splice(0))
      if (m.body.type === "acquire")
        from(m.to, {
          type: "lease",
          reply: { type: "granted", requestId: m.body.requestId, token: 7, ttlMs: 15_000 },
        });
  };
  const push = (txnId: string, participants: string[]) =>
    c.shell.begin(
      startCoordinator(DEFAULT_COORDINATOR_CONFIG, {
        txnId,
        coordinator: "@op",
        participants,
        plan: { planId: "next", version: 1 },
        activationWallMs: clock.wallMs + 60_000,
      }),
      { id: "next" },
    );
  push("t1", ["x1", "x2"]);
  grantAll();
  from("x1", { type: "vote", txnId: "t1", yes: true, reason: null });
  from("x2", { type: "vote", txnId: "t1", yes: true, reason: null });
  from("x1", { type: "ack", txnId: "t1", outcome: "committed" });
  from("x2", { type: "inquiry", txnId: "t1" });
  from("x2", { type: "inquiry", txnId: "t-unknown" });
  clock.monoMs += 2_000;
  clock.wallMs += 2_000;
  c.shell.tick();
  // Elsewhere: a lease reply names no transaction, and goes to the first unfinished run of its sender.
  push("t2", ["x3", "x4"]);
  grantAll();
  from("x3", { type: "vote", txnId: "t2", yes: true, reason: null });
  from("x4", { type: "vote", txnId: "t2", yes: false, reason: "no room" });
  c.shell.tick();
}

describe("the coordinator shell over the production log and over the simulator's", () => {
  it("sends, retains, answers and resumes the same things through either log", () => {
    const runs = [storeLog(), new SimCoordinatorLog()].map((log) => {
      const clock = { monoMs: 1_000, wallMs: 1_800_000_000_000 };
      const c = coordinatorOver(log, clock);
      const sentBefore: { to: string; body: CorridorBody }[] = [];
      const send = c.sent.push.bind(c.sent);
      c.sent.push = (...items) => (sentBefore.push(...items), send(...items));
      runScript(c, clock);
      const restarted = coordinatorOver(log, clock);
      const resumed = restarted.shell.resumeLog().map((r) => r.state.txnId);
      return {
        sent: sentBefore,
        retained: c.retained,
        outcomes: ["t1", "t2", "t-unknown"].map((t) => log.decisionOf(t)),
        unfinished: log.unfinished(),
        resumed,
        resent: restarted.sent,
      };
    });
    const [production, simulated] = runs;
    expect(production?.retained.map((r) => [r.txnId, r.outcome])).toEqual([
      ["t1", "committed"],
      ["t2", "aborted"],
    ]);
    expect(production?.outcomes.map((d) => d?.outcome ?? null)).toEqual(["committed", "aborted", null]);
    // Every copy of a decision carries the run's signature: the log's, the retained record's, the
    // COMMIT or ABORT sent, the answers, the COMMIT a restart resends; every PREPARE its decision key.
    const t1 = production?.outcomes[0]?.signature;
    expect(t1).toMatch(/^[A-Za-z0-9+/]{86}==$/);
    expect(production?.retained[0]?.signature).toBe(t1);
    const prepares = production?.sent.filter((m) => m.body.type === "prepare") ?? [];
    expect(prepares.length).toBe(4);
    for (const m of prepares)
      expect(m.body).toMatchObject({ decisionKey: expect.stringMatching(/^[\w-]{43}$/) });
    const decisions = [...(production?.sent ?? []), ...(production?.resent ?? [])].filter(
      (m) => m.body.type === "decision" || m.body.type === "answer",
    );
    expect(decisions.length).toBeGreaterThan(3);
    for (const m of decisions)
      if ("txnId" in m.body && m.body.txnId !== "t-unknown") expect(m.body).toHaveProperty("signature");
    expect(production?.resumed).toEqual(["t1"]);
    expect(simulated).toEqual(production);
  });
});
