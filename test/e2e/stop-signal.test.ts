import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { FIXTURE, writeFixture } from "../support/fixture-intersection.js";
import {
  decode,
  entryAt,
  GROUPS,
  type GroupId,
  type HistoryEntry,
  readHistory,
  readModuleState,
  runsOf,
  SAFE_STATE_COILS,
} from "../support/lamp-history.js";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { buildOnce } from "./cli.js";
import { cleanupProcesses, dirs, type Proc, start } from "./processes.js";

/**
 * Issue 12, defect 1: a stop signal (SIGTERM / SIGINT, what `systemctl stop` sends) must end every
 * green, walk and clearance through its clearances to all-red before the lamps go to the module's
 * safe state. Proved from the simulated module's recorded lamp history: the gateway of old wrote the
 * safe state at once, and its history showed M green → red and PS WALK → DON'T WALK with nothing between.
 */

beforeAll(() => buildOnce(), 180_000);
afterEach(() => cleanupProcesses());

/** Allowance for write-arrival jitter between the gateway's tick and the simulator's clock (as in gateway-sim.ts). */
const JITTER_MS = 80;
/** How much later than its logged bound a clean stop may exit: the process's own teardown after the safe state. */
const EXIT_MARGIN_MS = 1500;
/** Half a flash period at the fixture's default 55 flashes/min: a flashing DON'T WALK's end can hide in a lit half. */
const FLASH_HALF_MS = 60_000 / 55 / 2;

interface Running {
  control: string;
  gateway: Proc;
  exited: Promise<{ code: number | null; at: number }>;
}

async function startSimAndGateway(): Promise<Running> {
  const sim = start(["sim", "io-module", "--tcp", "0", "--control", "0"]);
  const up = await until("the simulator to listen", 10_000, () =>
    sim.lines.find((l) => l.event === "listening"),
  );
  const fixture = writeFixture(`{ tcp: "127.0.0.1:${String(up.modbusPort)}" }`);
  dirs.push(fixture.dir);
  const gateway = start(["gateway", "--config", fixture.intersection, "--data-dir", fixture.dataDir]);
  const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
    gateway.child.once("exit", (code) => resolve({ code, at: Date.now() })),
  );
  return { control: up.control as string, gateway, exited };
}

async function poll<T>(what: string, ms: number, probe: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const VEHICLE_OF_WALK: Record<string, GroupId> = { PS: "M", PM: "S" };

/**
 * Waits until a vehicle group has shown green for `greenMs` with a WALK showing beside it (the
 * simulator's history says so); returns that group and its walk.
 */
async function waitForGreenWithWalk(control: string, greenMs: number) {
  return await poll("a green of 2 s with a WALK beside it", 45_000, async () => {
    const entries = await readHistory(control);
    const last = entries.at(-1);
    if (!last) return null;
    const lamps = decode(last.outputs);
    for (const [walk, vehicle] of Object.entries(VEHICLE_OF_WALK) as [GroupId, GroupId][]) {
      if (lamps[vehicle] !== "G" || lamps[walk] !== "W") continue;
      const green = runsOf(entries, vehicle).at(-1);
      if (green && green.to === null && Date.now() - green.from >= greenMs) return { vehicle, walk };
    }
    return null;
  });
}

const logTime = (line: Record<string, unknown>) => Date.parse(line.time as string);
const findLine = (p: Proc, msg: string) => p.lines.find((l) => String(l.msg).startsWith(msg));

/** Waits for the module's watchdog to take the lamps (no master any more) and returns its state. */
async function safeStateAfterExit(control: string) {
  const { watchdog } = await readModuleState(control);
  return await poll("the module's watchdog safe state", watchdog.timeoutMs + 3000, async () => {
    const state = await readModuleState(control);
    return state.watchdog.inSafeState ? state : null;
  });
}

describe("greenwave gateway stopped by a signal, against the simulated module", () => {
  it("a SIGTERM ends every green and walk through its clearances to all-red, then the safe state, within the logged bound", async () => {
    const { control, gateway, exited } = await startSimAndGateway();
    const boundLine = await until("the clean-stop bound in the log", 15_000, () =>
      gateway.lines.find((l) => typeof l.cleanStopBoundMs === "number"),
    );
    const boundMs = boundLine.cleanStopBoundMs as number;
    // The longest minimum + clearance + red clearance of any group (PS: 7 s walk + 5 s clearance) and more.
    expect(boundMs).toBeGreaterThanOrEqual(12_000);

    const { vehicle, walk } = await waitForGreenWithWalk(control, 2000);
    const signalAt = Date.now();
    gateway.child.kill("SIGTERM");
    const exit = await exited;
    expect(exit.code, gateway.out).toBe(0);
    const stopped = findLine(gateway, "gateway stopped");
    expect(stopped?.outcome, gateway.out).toBe("clean");
    expect(exit.at - signalAt, "signal to exit").toBeLessThanOrEqual(boundMs + EXIT_MARGIN_MS);
    const allRedReached = findLine(gateway, "all-red reached");
    expect(allRedReached, gateway.out).toBeDefined();
    const allRedAt = logTime(allRedReached as Record<string, unknown>);

    // The module: the last thing the gateway wrote is all-red; then its watchdog keeps the safe state.
    const state = await safeStateAfterExit(control);
    expect(state.coils.slice(0, SAFE_STATE_COILS.length)).toBe(SAFE_STATE_COILS);
    const entries = await readHistory(control);
    const writes = entries.filter((e) => e.cause === "write");
    expect((writes.at(-1) as HistoryEntry).outputs.slice(0, SAFE_STATE_COILS.length)).toBe(SAFE_STATE_COILS);

    const atSignal = decode((entryAt(entries, signalAt) as HistoryEntry).outputs);
    expect(atSignal[vehicle]).toBe("G");
    expect(atSignal[walk]).toBe("W");

    // The vehicle group: green (at least its minimum from its start) → yellow (its full time) → red, then red to the end.
    const g = FIXTURE.groups[vehicle];
    const vRuns = runsOf(entries, vehicle);
    const greenIndex = vRuns.findIndex(
      (r) => r.lamp === "G" && r.from <= signalAt && (r.to ?? Infinity) > signalAt,
    );
    const [green, yellow, red, ...more] = vRuns.slice(greenIndex);
    const story = JSON.stringify(vRuns.slice(greenIndex));
    expect(green?.lamp, story).toBe("G");
    expect(yellow?.lamp, `${vehicle} after green: ${story}`).toBe("Y");
    expect(red?.lamp, `${vehicle} after yellow: ${story}`).toBe("R");
    expect(more, `${vehicle} after red: ${story}`).toEqual([]);
    const greenShown = (yellow as { from: number }).from - (green as { from: number }).from;
    expect(greenShown, `${vehicle} green shown`).toBeGreaterThanOrEqual(g.minGoMs - JITTER_MS);
    const yellowShown = (red as { from: number }).from - (yellow as { from: number }).from;
    expect(yellowShown, `${vehicle} yellow shown`).toBeGreaterThanOrEqual(g.clearanceMs - JITTER_MS);
    // Its red clearance ran before all-red was declared reached.
    expect(allRedAt - (red as { from: number }).from).toBeGreaterThanOrEqual(g.redClearanceMs - JITTER_MS);

    // The walk: WALK (its minimum) → flashing DON'T WALK (its clearance) → steady DON'T WALK to the end.
    const p = FIXTURE.groups[walk];
    const pRuns = runsOf(entries, walk);
    const walkIndex = pRuns.findIndex(
      (r) => r.lamp === "W" && r.from <= signalAt && (r.to ?? Infinity) > signalAt,
    );
    const [walking, ...after] = pRuns.slice(walkIndex);
    const pStory = JSON.stringify(pRuns.slice(walkIndex));
    expect(walking?.lamp).toBe("W");
    const walkEnd = walking?.to as number;
    expect(walkEnd - (walking as { from: number }).from, `${walk} walk shown`).toBeGreaterThanOrEqual(
      p.minGoMs - JITTER_MS,
    );
    // Flashing: DON'T WALK lit and dark in turn (at least one dark half), ending on DON'T WALK for good.
    expect(
      after.every((r) => r.lamp === "D" || r.lamp === "-"),
      `${walk} after walk: ${pStory}`,
    ).toBe(true);
    expect(after.filter((r) => r.lamp === "-").length, `${walk} flashing: ${pStory}`).toBeGreaterThanOrEqual(
      2,
    );
    const steady = after.at(-1);
    expect(steady?.lamp).toBe("D");
    expect(steady?.to).toBeNull();
    // The clearance's end is not visible when it falls in a lit half of the flash: bound it both ways.
    expect(
      (steady as { from: number }).from - walkEnd,
      `${walk} clearance (flashing seen)`,
    ).toBeGreaterThanOrEqual(p.clearanceMs - FLASH_HALF_MS - JITTER_MS);
    expect(allRedAt - walkEnd, `${walk} clearance (until all-red)`).toBeGreaterThanOrEqual(
      p.clearanceMs - JITTER_MS,
    );

    // Nothing else started after the signal: the groups at rest stayed at red / DON'T WALK throughout.
    for (const id of GROUPS.filter((x) => x !== vehicle && x !== walk)) {
      const later = runsOf(entries, id).filter((r) => (r.to ?? Infinity) > signalAt);
      expect(
        later.map((r) => r.lamp),
        `${id} after the signal`,
      ).toEqual([FIXTURE.groups[id].kind === "vehicle" ? "R" : "D"]);
    }
    // The stop took what the clearances needed, no less: the walk's remaining minimum and its clearance.
    expect(allRedAt - signalAt).toBeGreaterThanOrEqual(
      (walking as { from: number }).from + p.minGoMs + p.clearanceMs - signalAt - JITTER_MS,
    );
    console.log(
      `[stop-signal] SIGTERM with ${vehicle} green ${String(signalAt - (green as { from: number }).from)} ms: all-red after ${String(allRedAt - signalAt)} ms, exit after ${String(exit.at - signalAt)} ms (bound ${String(boundMs)} ms); ${vehicle} green ${String(greenShown)} ms, yellow ${String(yellowShown)} ms; ${walk} walk ${String(walkEnd - (walking as { from: number }).from)} ms, clearance ${String(allRedAt - walkEnd)} ms`,
    );
  }, 90_000);

  it("a second SIGTERM cuts the clean stop short, loudly, and the process exits at once", async () => {
    const { control, gateway, exited } = await startSimAndGateway();
    await waitForGreenWithWalk(control, 2000);
    gateway.child.kill("SIGTERM");
    await until("the clean stop to begin", 5000, () => findLine(gateway, "stopping"));
    await new Promise((r) => setTimeout(r, 500));
    const secondAt = Date.now();
    gateway.child.kill("SIGTERM");
    const exit = await exited;
    expect(exit.at - secondAt, "second signal to exit").toBeLessThanOrEqual(2000);
    expect(exit.code, gateway.out).toBe(0);
    const cut = findLine(gateway, "second stop signal");
    expect(cut, gateway.out).toBeDefined();
    expect(cut?.level).toBe(50); // pino's error
    expect(findLine(gateway, "gateway stopped")?.outcome, gateway.out).toBe("cut");
    const state = await safeStateAfterExit(control);
    expect(state.coils.slice(0, SAFE_STATE_COILS.length)).toBe(SAFE_STATE_COILS);
  }, 90_000);

  it("a SIGTERM during the start-up flash ends at all-red at once: nothing to clear", async () => {
    const { control, gateway, exited } = await startSimAndGateway();
    // Start-up flash: vehicle reds lit with the pedestrian heads dark (then dark together, in turn).
    await poll("the start-up flash on the module", 20_000, async () => {
      const writes = (await readHistory(control)).filter((e) => e.cause === "write");
      return writes.some((e) => {
        const l = decode(e.outputs);
        return l.M === "R" && l.S === "R" && l.PS === "-" && l.PM === "-";
      })
        ? true
        : null;
    });
    const signalAt = Date.now();
    gateway.child.kill("SIGTERM");
    const exit = await exited;
    expect(exit.code, gateway.out).toBe(0);
    expect(exit.at - signalAt, "signal to exit").toBeLessThanOrEqual(2000);
    expect(findLine(gateway, "gateway stopped")?.outcome, gateway.out).toBe("clean");
    // No green, yellow or walk ever; the last write is all-red, and the module keeps its safe state.
    const entries = await readHistory(control);
    for (const entry of entries) {
      const l = decode(entry.outputs);
      expect(
        [l.M, l.S, l.PS, l.PM].some((x) => /[GYW]/.test(x)),
        JSON.stringify(l),
      ).toBe(false);
    }
    const writes = entries.filter((e) => e.cause === "write");
    expect((writes.at(-1) as HistoryEntry).outputs.slice(0, SAFE_STATE_COILS.length)).toBe(SAFE_STATE_COILS);
    const state = await safeStateAfterExit(control);
    expect(state.coils.slice(0, SAFE_STATE_COILS.length)).toBe(SAFE_STATE_COILS);
    console.log(`[stop-signal] SIGTERM in the start-up flash: exit after ${String(exit.at - signalAt)} ms`);
  }, 60_000);
});
