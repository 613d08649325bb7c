import type { IntersectionPlan } from "../../gateway/core/model.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { loadIntersectionSetup, loadPlan } from "../../gateway/config/load.js";
import { compiledPlanCheck } from "../../gateway/node/compiled-plan-check.js";
import { storeParticipantDisk } from "../../gateway/node/corridor-participant.js";
import type { CorridorBody } from "../../gateway/protocol/corridor-messages.js";
import {
  DEFAULT_CORRIDOR_SETTINGS,
  type ParticipantDisk,
} from "../../gateway/shell/corridor/participant-ports.js";
import { ParticipantShell } from "../../gateway/shell/corridor/participant-shell.js";
import { createLogger } from "../../gateway/shell/log.js";
import { GatewayStore } from "../../gateway/store/store.js";
import { writeCorridorFixture } from "../../simulators/fixtures/corridor-fixture.js";
import type { SeededRandom } from "../../simulators/corridor/random.js";
import { SimDisk } from "../../simulators/corridor/sim-disk.js";

/**
 * The simulator proves the participant shell only if its simulated disk behaves as the gateway's
 * SQLite store does. Here one scripted run of the one interpreter (gateway/shell/corridor/
 * participant-shell.ts) goes through the production port (GatewayStore) and through the simulator's
 * (SimDisk), and everything observable must agree: the messages, the writes (with their forced flag),
 * the records a restart reads — also after the simulator's disk-loss model is applied to the
 * production interpreter's writes.
 */

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

const WALL_AT_START = 1_800_000_000_000;

function corridorFixture() {
  const written = writeCorridorFixture(2, { devicePort: () => 1502 });
  cleanups.push(() => rmSync(written.dir, { recursive: true, force: true }));
  const setup = loadIntersectionSetup(join(written.dir, "x1.yaml"));
  const planFile = loadPlan(join(written.dir, "plans/next.yaml")).raw as unknown;
  return { setup, planFile };
}

function openStore(): GatewayStore {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-divergence-"));
  const store = GatewayStore.open(dir);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => store.close());
  return store;
}

type Write = { readonly method: string; readonly args: readonly unknown[]; readonly forced: boolean };

/** A disk port that records every write the interpreter asks for, before passing it on. */
function recording(disk: ParticipantDisk, writes: Write[]): ParticipantDisk {
  return {
    leaseEpoch: () => disk.leaseEpoch(),
    participantRecord: (max) => disk.participantRecord(max),
    planBody: (planId, version) => disk.planBody(planId, version),
    committedTransactions: (limit) => disk.committedTransactions(limit),
    transactionRecord: (txnId) => disk.transactionRecord(txnId),
    planInForce: () => disk.planInForce(),
    persistLeaseEpoch: (epoch) => {
      writes.push({ method: "persistLeaseEpoch", args: [epoch], forced: true });
      disk.persistLeaseEpoch(epoch);
    },
    persistPrepared: (txn, plan, highestToken, atWallMs) => {
      writes.push({ method: "persistPrepared", args: [txn, plan, highestToken, atWallMs], forced: true });
      disk.persistPrepared(txn, plan, highestToken, atWallMs);
    },
    persistOutcome: (txnId, outcome, forced, atWallMs, signature) => {
      writes.push({ method: "persistOutcome", args: [txnId, outcome, forced, atWallMs, signature], forced });
      disk.persistOutcome(txnId, outcome, forced, atWallMs, signature);
    },
  };
}

function replay(disk: ParticipantDisk, write: Write): void {
  const call = disk[write.method as "persistOutcome"] as (...args: unknown[]) => void;
  call.apply(disk, [...write.args]);
}

/** One participant (x1) over the given disk, on a virtual clock; what it sends and schedules is recorded. */
function participantOver(
  disk: ParticipantDisk,
  fixture: ReturnType<typeof corridorFixture>,
  clock: { monoMs: number; wallMs: number },
) {
  const sent: { to: string; body: CorridorBody }[] = [];
  const scheduled: { txnId: string; resumed: boolean }[] = [];
  const shell = new ParticipantShell({
    me: "x1",
    disk,
    network: { send: (to, body) => sent.push({ to, body }) },
    clock: { now: () => ({ ...clock }) },
    planCheck: compiledPlanCheck(fixture.setup, createLogger("test", "silent")),
    host: {
      schedulePlan: (_plan, txn, resumed) => scheduled.push({ txnId: txn.txnId, resumed }),
      planRefusal: () => null,
      withdrawPlan: () => {},
      audit: () => {},
      changed: () => {},
    },
    log: { warn: () => {}, error: () => {} },
    settings: DEFAULT_CORRIDOR_SETTINGS,
  });
  return { shell, sent, scheduled };
}

/** A script of what reaches x1: a lease, changes committed and aborted, an inquiry, a stale token. */
function runScript(
  p: ReturnType<typeof participantOver>,
  fixture: ReturnType<typeof corridorFixture>,
  clock: { monoMs: number; wallMs: number },
): void {
  const from = (sender: string, body: CorridorBody) =>
    p.shell.onMessage({ from: sender, to: "x1", sentAtWallMs: clock.wallMs, body });
  const later = (ms: number) => {
    clock.monoMs += ms;
    clock.wallMs += ms;
  };
  // A lease serves the transaction it was taken for: each PREPARE under a lease of its own.
  let token = 0;
  const leaseFor = (txnId: string): number => {
    if (token > 0) from("@op", { type: "release", token });
    from("@op", { type: "acquire", requestId: `${txnId}/0/x1`, ttlMs: 15_000 });
    const grant = p.sent.findLast((m) => m.body.type === "lease")?.body;
    token = grant?.type === "lease" && grant.reply.type === "granted" ? grant.reply.token : 0;
    return token;
  };
  const prepare = (txnId: string, stale = false): CorridorBody => {
    const granted = leaseFor(txnId);
    return {
      type: "prepare",
      txnId,
      token: stale ? granted - 1 : granted,
      participants: ["x1", "x2"],
      plan: { id: "next", version: 1 },
      planFile: fixture.planFile,
      activationWallMs: clock.wallMs + 60_000,
    };
  };
  later(100);
  from("@op", prepare("t1"));
  from("@op", { type: "decision", txnId: "t1", outcome: "committed", token });
  from("x2", { type: "inquiry", txnId: "t-unknown" });
  later(100);
  from("@op", prepare("t2"));
  from("@op", { type: "decision", txnId: "t2", outcome: "aborted", token });
  from("@op", prepare("t3", true));
  from("@op", prepare("t4"));
  later(2_000);
  p.shell.tick(); // in doubt about t4: asks
}

function recordOf(disk: ParticipantDisk) {
  return {
    epoch: disk.leaseEpoch(),
    record: disk.participantRecord(256),
    committed: disk.committedTransactions(64),
    plan: disk.planBody("next", 1) !== null,
  };
}

/** The simulator's crash model with its random choice pinned: keep `kept` of the unforced writes. */
const keeping = (kept: number) => ({ int: () => kept }) as unknown as SeededRandom;

describe("the participant shell over the production store and over the simulator's disk", () => {
  it("sends, writes and restores the same things through either port", () => {
    const fixture = corridorFixture();
    const runs = [storeParticipantDisk(openStore()), new SimDisk()].map((disk) => {
      const writes: Write[] = [];
      const clock = { monoMs: 1_000, wallMs: WALL_AT_START };
      const p = participantOver(recording(disk, writes), fixture, clock);
      runScript(p, fixture, clock);
      const restarted = participantOver(disk, fixture, clock);
      restarted.shell.resume();
      restarted.shell.tick();
      return {
        sent: p.sent,
        scheduled: p.scheduled,
        writes,
        disk: recordOf(disk),
        afterRestart: {
          state: restarted.shell.participantState,
          sent: restarted.sent,
          scheduled: restarted.scheduled,
        },
      };
    });
    const [production, simulated] = runs;
    // The script did what it says: yes, commit, refusal, abort, a stale token refused, in doubt at the end.
    const votes = production?.sent.filter((m) => m.body.type === "vote").map((m) => m.body);
    expect(votes?.map((v) => (v.type === "vote" ? v.yes : null))).toEqual([true, true, false, true]);
    expect(production?.afterRestart.state.prepared?.txnId).toBe("t4");
    // An abort is written lazily (presumed abort), a commit and a refusal forced.
    expect(production?.writes.filter((w) => w.method === "persistOutcome").map((w) => w.forced)).toEqual([
      true,
      true,
      false,
    ]);
    expect(simulated).toEqual(production);
  });

  it("keeps one content per plan version, and forgets a plan first seen in an aborted change, alike", () => {
    const fixture = corridorFixture();
    const planFile = fixture.planFile as Record<string, unknown>;
    const held = [storeParticipantDisk(openStore()), new SimDisk()].map((disk) => {
      const clock = { monoMs: 1_000, wallMs: WALL_AT_START };
      const p = participantOver(disk, fixture, clock);
      const from = (body: CorridorBody) =>
        p.shell.onMessage({ from: "@op", to: "x1", sentAtWallMs: clock.wallMs, body });
      // Each PREPARE under a lease of its own (a lease serves the transaction it was taken for).
      let token = 0;
      const prepare = (txnId: string, version: number, file: unknown) => {
        if (token > 0) from({ type: "release", token });
        from({ type: "acquire", requestId: `${txnId}/0/x1`, ttlMs: 15_000 });
        const grant = p.sent.findLast((m) => m.body.type === "lease")?.body;
        token = grant?.type === "lease" && grant.reply.type === "granted" ? grant.reply.token : 0;
        from({
          type: "prepare",
          txnId,
          token,
          participants: ["x1", "x2"],
          plan: { id: "next", version },
          planFile: file,
          activationWallMs: clock.wallMs + 60_000,
        });
      };
      const stages = (version: number) =>
        (disk.planBody("next", version) as IntersectionPlan | null)?.stages.length ?? null;
      prepare("t1", 2, { ...planFile, version: 2 });
      const whilePrepared = stages(2);
      from({ type: "decision", txnId: "t1", outcome: "aborted", token });
      const afterAbort = stages(2);
      prepare("t2", 1, planFile);
      from({ type: "decision", txnId: "t2", outcome: "committed", token });
      // Another content under v1: refused (a reversed stage order is another plan).
      const parts = planFile.intersections as Record<string, { stages: unknown[] }>;
      const reordered = Object.fromEntries(
        Object.entries(parts).map(([id, part]) => [id, { ...part, stages: [...part.stages].reverse() }]),
      );
      prepare("t3", 1, { ...planFile, intersections: reordered });
      const votes = p.sent
        .filter((m) => m.body.type === "vote")
        .map((m) => m.body.type === "vote" && m.body.yes);
      return { whilePrepared, afterAbort, votes, v1: disk.planBody("next", 1)?.digest };
    });
    expect(held[0]).toMatchObject({ whilePrepared: 2, afterAbort: null, votes: [true, true, false] });
    expect(held[0]?.v1).toMatch(/^[0-9a-f]{64}$/);
    expect(held[1]).toEqual(held[0]);
  });

  it("production's store honours persist-outcome.forced (it used to force every outcome)", () => {
    const fixture = corridorFixture();
    const store = openStore();
    const persistOutcome = vi.spyOn(store, "persistOutcome");
    const clock = { monoMs: 1_000, wallMs: WALL_AT_START };
    runScript(participantOver(storeParticipantDisk(store), fixture, clock), fixture, clock);
    expect(persistOutcome.mock.calls.map((call) => [call[0], call[1], call[3]])).toEqual([
      ["t1", "committed", true],
      ["t-unknown", "aborted", true],
      ["t2", "aborted", false],
    ]);
  });

  it("the simulator's disk-loss model, applied to the production interpreter's writes, restores alike", () => {
    const fixture = corridorFixture();
    const writes: Write[] = [];
    const clock = { monoMs: 1_000, wallMs: WALL_AT_START };
    const p = participantOver(recording(storeParticipantDisk(openStore()), writes), fixture, clock);
    runScript(p, fixture, clock);
    // Crash at every point of the run, keeping every possible prefix of the writes since the last forced
    // one: the store replayed with what survives, and the sim disk crashed the same way, must restore
    // the same participant.
    for (let cut = 1; cut <= writes.length; cut++) {
      const done = writes.slice(0, cut);
      const lastForced = done.findLastIndex((w) => w.forced);
      for (let kept = 0; kept <= done.length - lastForced - 1; kept++) {
        const survived = done.slice(0, lastForced + 1 + kept);
        const store = storeParticipantDisk(openStore());
        for (const write of survived) replay(store, write);
        const sim = new SimDisk();
        for (const write of done) replay(sim, write);
        sim.crash(keeping(kept));
        const restoredFromStore = participantOver(store, fixture, clock).shell.participantState;
        const restoredFromSim = participantOver(sim, fixture, clock).shell.participantState;
        expect(recordOf(sim), `cut ${cut}, kept ${kept}`).toEqual(recordOf(store));
        expect(restoredFromSim, `cut ${cut}, kept ${kept}`).toEqual(restoredFromStore);
      }
    }
  });
});
