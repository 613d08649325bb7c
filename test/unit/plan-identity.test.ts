import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { compileIntersectionPlan, loadIntersectionSetup, loadPlan } from "../../gateway/config/load.js";
import { checkPlanIdentity, shortDigest } from "../../gateway/core/corridor/plan-identity.js";
import type { IntersectionPlan } from "../../gateway/core/model.js";
import { compiledPlanCheck } from "../../gateway/node/compiled-plan-check.js";
import { storeParticipantDisk } from "../../gateway/node/corridor-participant.js";
import { planAtStart, recordPlanAtStart } from "../../gateway/node/plan-at-start.js";
import type { CorridorBody } from "../../gateway/protocol/corridor-messages.js";
import { DEFAULT_CORRIDOR_SETTINGS } from "../../gateway/shell/corridor/participant-ports.js";
import { ParticipantShell } from "../../gateway/shell/corridor/participant-shell.js";
import { createLogger } from "../../gateway/shell/log.js";
import { MIGRATIONS } from "../../gateway/store/migrations.js";
import { GatewayStore, STORE_FILE } from "../../gateway/store/store.js";
import { writeCorridorFixture } from "../../simulators/fixtures/corridor-fixture.js";

/**
 * A plan is its id, version and content digest (issue 19, item 4): a participant refuses another
 * content under a version it holds, takes the same content again, and a store from before digests
 * (migration 5) is compared by what it kept, the compiled plan.
 */

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

const WALL = 1_800_000_000_000;
const silent = createLogger("test", "silent");

/** A 2-intersection fixture; `next` (v1) as written, and an edit of it under the same version. */
function fixture() {
  const written = writeCorridorFixture(2);
  cleanups.push(() => rmSync(written.dir, { recursive: true, force: true }));
  const setup = loadIntersectionSetup(join(written.dir, "x1.yaml"));
  const nextFile = join(written.plans, "next.yaml");
  const editedDir = join(written.dir, "edited");
  mkdirSync(editedDir);
  const editedFile = join(editedDir, "next.yaml");
  writeFileSync(
    editedFile,
    readFileSync(nextFile, "utf8")
      .replaceAll("splitSeconds: 21 }", "splitSeconds: 22 }")
      .replaceAll("splitSeconds: 19 }", "splitSeconds: 18 }"),
  );
  const next = loadPlan(nextFile);
  const edited = loadPlan(editedFile);
  const compile = (plan: typeof next) =>
    compileIntersectionPlan(setup.intersection.intersection, plan, setup.corridor);
  return { setup, next, edited, compiled: { next: compile(next), edited: compile(edited) } };
}

/** What a store of greenwave before digests kept of a plan: its compiled form, no digest. */
function withoutDigest(plan: IntersectionPlan): IntersectionPlan {
  const { digest: _digest, ...rest } = plan;
  return rest;
}

describe("the identity rule (pure)", () => {
  const f = fixture();
  const offer = (plan: IntersectionPlan, claimed: string | null = plan.digest ?? null) => ({
    planId: "next",
    version: 1,
    claimedDigest: claimed,
    plan,
  });

  it("takes a new version, and the same content again", () => {
    expect(checkPlanIdentity(offer(f.compiled.next), null)).toEqual({ ok: true });
    expect(checkPlanIdentity(offer(f.compiled.next), f.compiled.next)).toEqual({ ok: true });
  });

  it("refuses another content under a version held here, naming both digests and saying to raise the version", () => {
    const verdict = checkPlanIdentity(offer(f.compiled.edited), f.compiled.next);
    expect(verdict).toEqual({
      ok: false,
      reason: `plan next version 1 is already known here with different content (digest ${shortDigest(f.compiled.next.digest as string)}…, this push's ${shortDigest(f.compiled.edited.digest as string)}…): raise the version to push changed content`,
    });
  });

  it("refuses a PREPARE whose named digest is not its content's", () => {
    const verdict = checkPlanIdentity(offer(f.compiled.edited, f.compiled.next.digest as string), null);
    expect(verdict.ok).toBe(false);
    expect(!verdict.ok && verdict.reason).toContain("read the plan differently");
  });

  it("compares a plan stored before digests by its compiled form", () => {
    const legacy = withoutDigest(f.compiled.next);
    expect(checkPlanIdentity(offer(f.compiled.next), legacy)).toEqual({ ok: true });
    const verdict = checkPlanIdentity(offer(f.compiled.edited), legacy);
    expect(!verdict.ok && verdict.reason).toBe(
      "plan next version 1 is already known here with different content (stored before content digests, and its compiled form differs): raise the version to push changed content",
    );
  });
});

/** A store as greenwave wrote it before digests (schema 4), holding `next` v1 compiled as `body`. */
function storeBeforeDigests(body: IntersectionPlan): string {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-identity-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const db = new Database(join(dir, STORE_FILE));
  db.pragma("journal_mode = WAL");
  MIGRATIONS.slice(0, 4).forEach((migration, i) => {
    db.exec(migration);
    db.pragma(`user_version = ${i + 1}`);
  });
  db.prepare(
    "INSERT INTO plans (plan_id, version, body, source, received_at_ms) VALUES ('next', 1, ?, 'txn old', 1)",
  ).run(JSON.stringify(body));
  db.close();
  return dir;
}

function openStore(dir: string): GatewayStore {
  const store = GatewayStore.open(dir);
  cleanups.push(() => store.close());
  return store;
}

/** x1's participant over a real store; PREPAREs of `next` v1 with the given plan file. */
function participant(store: GatewayStore, setup: ReturnType<typeof fixture>["setup"]) {
  const sent: CorridorBody[] = [];
  const clock = { monoMs: 1000, wallMs: WALL };
  const shell = new ParticipantShell({
    me: "x1",
    disk: storeParticipantDisk(store),
    network: { send: (_to, body) => sent.push(body) },
    clock: { now: () => ({ ...clock }) },
    planCheck: compiledPlanCheck(setup, silent),
    host: {
      schedulePlan: () => {},
      planRefusal: () => null,
      withdrawPlan: () => {},
      audit: () => {},
      changed: () => {},
    },
    log: { warn: () => {}, error: () => {} },
    settings: DEFAULT_CORRIDOR_SETTINGS,
  });
  const from = (body: CorridorBody) =>
    shell.onMessage({ from: "@op", to: "x1", sentAtWallMs: clock.wallMs, body });
  let token = -1;
  /** A lease serves the transaction it was taken for: the previous one released, this one's taken. */
  const leaseFor = (txnId: string) => {
    if (token >= 0) from({ type: "release", token });
    from({ type: "acquire", requestId: `${txnId}/0/x1`, ttlMs: 15_000 });
    const grant = sent.findLast((b) => b.type === "lease");
    token = grant?.type === "lease" && grant.reply.type === "granted" ? grant.reply.token : -1;
  };
  /** Sends a PREPARE and returns the vote, settling the transaction with `then`. */
  const prepare = (txnId: string, planFile: unknown, digest?: string, then?: "committed" | "aborted") => {
    leaseFor(txnId);
    from({
      type: "prepare",
      txnId,
      token,
      participants: ["x1", "x2"],
      plan: { id: "next", version: 1, ...(digest !== undefined ? { digest } : {}) },
      planFile,
      activationWallMs: clock.wallMs + 60_000,
    });
    const vote = sent.findLast((b) => b.type === "vote");
    if (then) from({ type: "decision", txnId, outcome: then, token });
    return vote?.type === "vote" ? vote : null;
  };
  return { prepare };
}

describe("a participant over its store", () => {
  it("refuses edited content under a version it holds, takes the same content again, and forgets a plan first seen in an aborted change", () => {
    const f = fixture();
    const store = openStore(mkdtempSync(join(tmpdir(), "greenwave-identity-")));
    const p = participant(store, f.setup);
    // First seen with a change that aborts: forgotten with it, so the version is free again.
    expect(p.prepare("t0", f.edited.raw, f.compiled.edited.digest, "aborted")?.yes).toBe(true);
    expect(store.planBody("next", 1)).toBeNull();
    expect(p.prepare("t1", f.next.raw, f.compiled.next.digest, "committed")?.yes).toBe(true);
    expect(store.planDigest("next", 1)).toBe(f.compiled.next.digest);
    const refused = p.prepare("t2", f.edited.raw, f.compiled.edited.digest);
    expect(refused?.yes).toBe(false);
    expect(refused?.reason).toContain(
      `plan next version 1 is already known here with different content (digest ${shortDigest(f.compiled.next.digest as string)}`,
    );
    expect(refused?.reason).toContain("raise the version to push changed content");
    // Without a digest in the PREPARE (an older coordinator), the content decides all the same.
    expect(p.prepare("t3", f.edited.raw)?.yes).toBe(false);
    expect(p.prepare("t4", f.next.raw, f.compiled.next.digest, "aborted")?.yes).toBe(true);
    // The aborted re-push of a plan known before does not make it forgotten.
    expect(store.planDigest("next", 1)).toBe(f.compiled.next.digest);
  });

  it("migrates a store from before digests: the same compiled plan is taken (and gets its digest), another refused", () => {
    const f = fixture();
    const same = openStore(storeBeforeDigests(withoutDigest(f.compiled.next)));
    expect(same.schemaVersion).toBe(MIGRATIONS.length);
    expect(same.planDigest("next", 1)).toBeNull();
    expect(participant(same, f.setup).prepare("t1", f.next.raw, f.compiled.next.digest)?.yes).toBe(true);
    expect(same.planDigest("next", 1)).toBe(f.compiled.next.digest);
    expect((same.planBody("next", 1) as IntersectionPlan).digest).toBe(f.compiled.next.digest);

    const other = openStore(storeBeforeDigests(withoutDigest(f.compiled.edited)));
    const vote = participant(other, f.setup).prepare("t1", f.next.raw, f.compiled.next.digest);
    expect(vote?.yes).toBe(false);
    expect(vote?.reason).toContain("stored before content digests, and its compiled form differs");
    expect(other.planDigest("next", 1)).toBeNull();
  });
});

describe("the plan a gateway starts with", () => {
  it("is the content held under the version in force when the plan file was edited under it; the file's for a plan from before digests", () => {
    const f = fixture();
    const configured = { ...f.setup, initialPlan: f.compiled.next };
    const store = openStore(mkdtempSync(join(tmpdir(), "greenwave-identity-")));
    store.recordPlan("next", 1, f.compiled.edited, "txn t1", WALL);
    store.setPlanInForce({ planId: "next", version: 1, sinceWallMs: WALL, activationWallMs: WALL });
    const lines: string[] = [];
    const log = createLogger("test", "warn", { write: (line: string) => void lines.push(line) });
    expect(planAtStart(configured, store, log).digest).toBe(f.compiled.edited.digest);
    expect(lines.join("")).toContain("raise the version in the plan file");

    const legacy = openStore(storeBeforeDigests(withoutDigest(f.compiled.edited)));
    legacy.setPlanInForce({ planId: "next", version: 1, sinceWallMs: WALL, activationWallMs: null });
    const started = planAtStart(configured, legacy, silent);
    expect(started).toBe(configured.initialPlan);
    recordPlanAtStart(legacy, started, WALL, silent);
    expect(legacy.planDigest("next", 1)).toBe(f.compiled.next.digest);
  });
});
