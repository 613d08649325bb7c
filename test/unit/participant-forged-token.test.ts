import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadIntersectionSetup, loadPlan } from "../../gateway/config/load.js";
import { compiledPlanCheck } from "../../gateway/node/compiled-plan-check.js";
import { storeParticipantDisk } from "../../gateway/node/corridor-participant.js";
import type { CorridorBody } from "../../gateway/protocol/corridor-messages.js";
import { DEFAULT_CORRIDOR_SETTINGS } from "../../gateway/shell/corridor/participant-ports.js";
import { ParticipantShell } from "../../gateway/shell/corridor/participant-shell.js";
import { createLogger } from "../../gateway/shell/log.js";
import { GatewayStore } from "../../gateway/store/store.js";
import { writeCorridorFixture } from "../../simulators/fixtures/corridor-fixture.js";

/**
 * Issue 20, item 1, through the interpreter the gateway runs and its SQLite store: one member's
 * credentials send a PREPARE with a fencing token this intersection's authority never granted. Before
 * the fix the participant voted yes and stored the token as its floor, so every later plan push was
 * refused ("fencing token 1048578 is older than 9007199254740991"), also after a restart.
 */
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

const FORGED = Number.MAX_SAFE_INTEGER;

function participant(store: GatewayStore, clock: { monoMs: number; wallMs: number }) {
  const written = writeCorridorFixture(2, { devicePort: () => 1502 });
  cleanups.push(() => rmSync(written.dir, { recursive: true, force: true }));
  const setup = loadIntersectionSetup(join(written.dir, "x1.yaml"));
  const planFile = loadPlan(join(written.dir, "plans/next.yaml")).raw as unknown;
  const sent: { to: string; body: CorridorBody }[] = [];
  const shell = new ParticipantShell({
    me: "x1",
    disk: storeParticipantDisk(store),
    network: { send: (to, body) => sent.push({ to, body }) },
    clock: { now: () => ({ ...clock }) },
    planCheck: compiledPlanCheck(setup, createLogger("test", "silent")),
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
  const from = (sender: string, body: CorridorBody) =>
    shell.onMessage({ from: sender, to: "x1", sentAtWallMs: clock.wallMs, body });
  const prepare = (sender: string, txnId: string, token: number) =>
    from(sender, {
      type: "prepare",
      txnId,
      token,
      participants: ["x1", "x2"],
      plan: { id: "next", version: 1 },
      planFile,
      activationWallMs: clock.wallMs + 60_000,
    });
  const lastVote = () =>
    sent.filter((m) => m.body.type === "vote").at(-1)?.body as Extract<CorridorBody, { type: "vote" }>;
  return { shell, sent, from, prepare, lastVote };
}

function openStore(dir: string): GatewayStore {
  const store = GatewayStore.open(dir);
  cleanups.push(() => store.close());
  return store;
}

describe("a fencing token this intersection's authority never granted (issue 20, item 1)", () => {
  it("is voted down, leaves the fencing floor alone (in memory and on disk), and blocks no later push", () => {
    const dir = mkdtempSync(join(tmpdir(), "greenwave-forged-token-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const clock = { monoMs: 1_000, wallMs: 1_800_000_000_000 };
    const store = openStore(dir);
    const first = participant(store, clock);
    first.prepare("x2", "forged", FORGED);
    expect(first.lastVote()).toMatchObject({ txnId: "forged", yes: false });
    expect(first.lastVote().reason).toContain(`fencing token ${FORGED} was not granted to x2`);
    expect(first.shell.participantState.highestToken).toBe(0);

    // A legitimate coordinator under a lease it was granted is not blocked.
    first.from("@op", { type: "acquire", requestId: "legit/0/x1", ttlMs: 15_000 });
    const granted = first.shell.lock;
    expect(granted?.holder).toBe("@op");
    // Someone else replaying the holder's real token is refused too.
    first.prepare("x2", "replayed", granted?.token as number);
    expect(first.lastVote()).toMatchObject({ txnId: "replayed", yes: false });
    // The holder itself, with its real token, for another transaction than the lease was taken for.
    first.prepare("@op", "other", granted?.token as number);
    expect(first.lastVote()).toMatchObject({ txnId: "other", yes: false });
    expect(first.lastVote().reason).toContain(
      "was taken for another transaction (request legit/0/x1), not other",
    );
    first.prepare("@op", "legit", granted?.token as number);
    expect(first.lastVote()).toMatchObject({ txnId: "legit", yes: true });

    // What a restart reads back: the floor is the granted token, never the forged one.
    expect(storeParticipantDisk(store).participantRecord(10).highestToken).toBe(granted?.token);
  });
});
