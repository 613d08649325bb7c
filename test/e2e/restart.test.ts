import { readFileSync, writeFileSync } from "node:fs";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { IN_STEP_TOLERANCE_MS } from "../../gateway/core/model.js";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { FIXTURE, fixtureFiles, writeFixtureFiles } from "../support/fixture-intersection.js";
import { decode, entryAt, GROUPS, type HistoryEntry, readHistory, runsOf } from "../support/lamp-history.js";
import { FIXTURE_LAYOUT, lampViolations } from "./chaos-support.js";
import { buildOnce } from "./cli.js";
import { cleanupProcesses, dirs, type Proc, start } from "./processes.js";

/**
 * Issue 19, item 16: a restart without the start-up flash when it is safe, proved from the simulated
 * module's recorded lamps with gateway processes started as a user starts them:
 * - a clean stop, then a start: no flash (steady red, the start-up all-red, then the cycle);
 * - `kill -9` with a module that holds its lamps (a long host watchdog): the new process takes the
 *   lamps over where they are (no flash, the green not cut, no fault) and the cycle stays in step;
 * - the same kill, but the intersection file changed in between: the full start-up (the green cleared
 *   through its yellow, then flash and all-red);
 * - and the defect found on the way: a process stalled past the module's watchdog, which dropped the
 *   lamps to red with no yellow, latches a fault instead of bringing the green back out of nowhere.
 */

beforeAll(() => buildOnce(), 180_000);
afterEach(() => cleanupProcesses());

/** Write-arrival jitter between the gateway's tick and the simulator's clock (as in gateway-sim.ts). */
const JITTER_MS = 80;
/** A watchdog longer than any pause in these tests: the module holds the dead process's lamps. */
const LONG_WATCHDOG = "watchdogMs: 20000";
/** The fixture's start-up all-red (`startup: { flashSeconds: 3, allRedSeconds: 2 }`). */
const ALL_RED_MS = 2000;

interface Rig {
  control: string;
  dir: string;
  intersection: string;
  dataDir: string;
}

/** The module: the generic DO/DI module (its watchdog as in the fixture, or long), or a relay board with none. */
type Module = "default" | "long" | "relay-board";
const RELAY_BOARD = resolve("config/devices/relay-board-16.yaml");

async function rig(module: Module): Promise<Rig> {
  const profile = module === "relay-board" ? ["--profile", RELAY_BOARD] : [];
  const sim = start(["sim", "io-module", ...profile, "--tcp", "0", "--control", "0"]);
  const up = await until("the simulator to listen", 10_000, () =>
    sim.lines.find((l) => l.event === "listening"),
  );
  const dir = mkdtempSync(join(tmpdir(), "greenwave-restart-"));
  dirs.push(dir);
  writeFixtureFiles(
    dir,
    fixtureFiles(`{ tcp: "127.0.0.1:${String(up.modbusPort)}" }`, {
      ...(module === "relay-board" ? { profile: RELAY_BOARD } : {}),
    }),
  );
  const intersection = join(dir, "x1.yaml");
  if (module === "long") edit(intersection, (t) => t.replace("watchdogMs: 1000", LONG_WATCHDOG));
  return { control: up.control as string, dir, intersection, dataDir: join(dir, "data") };
}

function edit(file: string, change: (text: string) => string): void {
  const before = readFileSync(file, "utf8");
  const after = change(before);
  expect(after, `edit of ${file}`).not.toBe(before);
  writeFileSync(file, after);
}

interface Gateway {
  proc: Proc;
  startedAt: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

function gateway(r: Rig): Gateway {
  const startedAt = Date.now();
  const proc = start(["gateway", "--config", r.intersection, "--data-dir", r.dataDir]);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    proc.child.once("exit", (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  return { proc, startedAt, exited };
}

const logTime = (line: Record<string, unknown>) => Date.parse(line.time as string);
const line = (p: Proc, pred: (l: Record<string, unknown>) => boolean) => p.lines.find(pred);
const modeLine = (p: Proc, modes: string[]) =>
  line(p, (l) => l.msg === "mode" && modes.includes(String((l.event as { mode?: string }).mode)));
const startUpOf = (p: Proc) =>
  line(p, (l) => typeof l.startUp === "object" && l.startUp !== null) as
    | {
        startUp: { how: string; reason: string };
        previousRun: { previous: string; why: string };
        time: string;
      }
    | undefined;

async function poll<T>(what: string, ms: number, probe: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits for the gateway to run its plan (mode coordinated or transition). */
async function running(g: Gateway, ms = 20_000): Promise<number> {
  const l = await until("the gateway to run its plan", ms, () =>
    modeLine(g.proc, ["coordinated", "transition"]),
  );
  return logTime(l);
}

/**
 * Waits until M has shown green for `greenMs` (and at most `latestMs`, so that its stage still has its
 * green to run), with no yellow anywhere: a moment the lamps show a stage's go state and nothing else.
 */
async function midGreen(
  control: string,
  greenMs: number,
  latestMs: number,
  inStepOf: Proc | null = null,
): Promise<number> {
  return await poll("M green, in the middle of its stage", 75_000, async () => {
    const entries = await readHistory(control);
    const last = entries.at(-1);
    if (!last) return null;
    const lamps = decode(last.outputs);
    if (lamps.M !== "G" || lamps.S !== "R") return null;
    const green = runsOf(entries, "M").at(-1);
    const shown = green ? Date.now() - green.from : 0;
    if (!green || green.to !== null || shown < greenMs || shown > latestMs) return null;
    // In step: the green began with a cycle (main is the first stage) that began on its offset, not in a
    // stage a start-up entered late and stretched (where the clock does not put it).
    if (inStepOf && !cycleStartNear(inStepOf, green.from)) return null;
    return green.from;
  });
}

/** Did the gateway log a cycle start in step (within the tolerance of its offset) at about `t`? */
function cycleStartNear(p: Proc, t: number): boolean {
  return p.lines.some(
    (l) =>
      l.msg === "cycle-start" &&
      Math.abs(logTime(l) - t) <= 300 &&
      Math.abs((l.event as { offsetErrorMs: number }).offsetErrorMs) <= IN_STEP_TOLERANCE_MS,
  );
}

const vehicleDark = (e: HistoryEntry) =>
  GROUPS.some((g) => FIXTURE.groups[g].kind === "vehicle" && decode(e.outputs)[g] === "-");
const goes = (e: HistoryEntry) => /[GW]/.test(Object.values(decode(e.outputs)).join(""));

describe("greenwave gateway restarted, against the simulated module", () => {
  it("a clean stop, then a start: no start-up flash, steady red through the start-up all-red, then the cycle", async () => {
    const r = await rig("default");
    const first = gateway(r);
    await running(first);
    await midGreen(r.control, 500, 10_000);
    first.proc.child.kill("SIGTERM");
    const exit = await first.exited;
    expect(exit.code, first.proc.out).toBe(0);
    expect(line(first.proc, (l) => l.msg === "gateway stopped")?.outcome, first.proc.out).toBe("clean");
    const allRedAt = logTime(line(first.proc, (l) => String(l.msg).startsWith("all-red reached")) ?? {});

    const second = gateway(r);
    const decided = await until("the start-up decision", 15_000, () => startUpOf(second.proc));
    expect(decided.startUp.how, second.proc.out).toBe("warm");
    expect(decided.previousRun.previous).toBe("stopped-clean");
    expect(String(line(second.proc, (l) => l.startUp !== undefined)?.msg)).toContain(
      "start-up without flash",
    );
    // The first green or walk after the restart: the start-up all-red, then the stage the offset puts it in.
    const firstGo = await poll(
      "a green or walk after the restart",
      45_000,
      async () => (await readHistory(r.control)).find((e) => e.t > second.startedAt && goes(e)) ?? null,
    );
    const entries = await readHistory(r.control);
    // From the first run's all-red to that green: every head steady red / DON'T WALK — no flash, no dark.
    const between = entries.slice(
      entries.indexOf(entryAt(entries, allRedAt) as HistoryEntry),
      entries.indexOf(firstGo),
    );
    expect(between.length).toBeGreaterThan(0);
    for (const e of between)
      expect(decode(e.outputs), `${e.t} ${e.cause}`).toEqual({ M: "R", S: "R", PS: "D", PM: "D" });
    // The start-up all-red is served in full after the decision, no less.
    const decidedAt = logTime(decided as unknown as Record<string, unknown>);
    expect(firstGo.t - decidedAt).toBeGreaterThanOrEqual(ALL_RED_MS - JITTER_MS);
    expect(line(second.proc, (l) => String(l.msg).startsWith("FAULT"))).toBeUndefined();
    const inCycle = await running(second);
    console.log(
      `[restart] clean restart: all-red ${String(firstGo.t - allRedAt)} ms from the first run's all-red to the first green (process down ${String(second.startedAt - exit.at)} ms, start to decision ${String(decidedAt - second.startedAt)} ms, decision to green ${String(firstGo.t - decidedAt)} ms; in its cycle ${String(inCycle - decidedAt)} ms after the decision); no start-up flash`,
    );
  }, 120_000);

  it.each([
    { module: "long" as const, pauseMs: 0, what: "a module with a long watchdog, restarted at once" },
    {
      module: "relay-board" as const,
      pauseMs: 3000,
      what: "a relay board (no watchdog), restarted after 3 s",
    },
  ])(
    "kill -9 with a module that holds its lamps ($what): the restart takes them over, no flash, the green not cut, no fault, in step",
    async ({ module, pauseMs }) => {
      const r = await rig(module);
      const first = gateway(r);
      await running(first);
      const greenFrom = await midGreen(r.control, 1000, 6000 - pauseMs, first.proc);
      const killAt = Date.now();
      first.proc.child.kill("SIGKILL");
      await first.exited;
      await new Promise((done) => setTimeout(done, pauseMs));
      const second = gateway(r);
      const decided = await until("the start-up decision", 15_000, () => startUpOf(second.proc));
      expect(decided.startUp.how, second.proc.out).toBe("resumed");
      expect(decided.previousRun.previous).toBe("ended-abruptly");
      const decidedAt = logTime(decided as unknown as Record<string, unknown>);
      // The cycle goes on: M's green ends in its yellow, S gets its green, and a cycle starts in step.
      await poll(
        "S green after the resumed stage",
        45_000,
        async () =>
          (await readHistory(r.control)).find((e) => e.t > killAt && decode(e.outputs).S === "G") ?? null,
      );
      const cycle = await until("a cycle start after the resume", 45_000, () =>
        line(second.proc, (l) => l.msg === "cycle-start"),
      );
      const offsetErrorMs = (cycle.event as { offsetErrorMs: number }).offsetErrorMs;
      // In step, unless the walk taken over had to outrun the main stage's 16 s window: the core runs
      // its minimum and clearance again from the take-over (plus 500 ms for the first tick,
      // RESUME_FIRST_TICK_MS), and a stage may lose up to three 100 ms ticks; late by that much, no more.
      const takeoverMs = decidedAt - greenFrom;
      const walkOverrunMs = Math.max(
        0,
        takeoverMs +
          FIXTURE.groups.PS.minGoMs +
          FIXTURE.groups.PS.clearanceMs +
          500 -
          FIXTURE.stages[0].splitMs,
      );
      expect(Math.abs(offsetErrorMs), "offset error of the first cycle after the resume").toBeLessThanOrEqual(
        IN_STEP_TOLERANCE_MS + (walkOverrunMs > 0 ? walkOverrunMs + 300 : 0),
      );

      const entries = await readHistory(r.control);
      const after = entries.filter((e) => e.t >= killAt);
      expect(
        after.filter((e) => e.cause === "watchdog"),
        "watchdog trips",
      ).toEqual([]);
      for (const e of after)
        expect(vehicleDark(e), `${e.t} ${e.outputs}: a vehicle head dark (flash)`).toBe(false);
      // M: the green that was on at the kill ran on, then yellow (its full time), then red.
      const m = runsOf(entries, "M");
      const i = m.findIndex((run) => run.lamp === "G" && run.from === greenFrom);
      const [green, yellow, red] = m.slice(i, i + 3);
      expect([green?.lamp, yellow?.lamp, red?.lamp], JSON.stringify(m.slice(i))).toEqual(["G", "Y", "R"]);
      expect((yellow?.from ?? 0) - (green?.from ?? 0)).toBeGreaterThanOrEqual(
        FIXTURE.groups.M.minGoMs - JITTER_MS,
      );
      expect((red?.from ?? 0) - (yellow?.from ?? 0)).toBeGreaterThanOrEqual(
        FIXTURE.groups.M.clearanceMs - JITTER_MS,
      );
      // And every rule of the lamps, across the restart, as one run of normal operation.
      expect(
        lampViolations(
          FIXTURE_LAYOUT,
          entries as Parameters<typeof lampViolations>[1],
          [{ from: greenFrom, to: Date.now() }],
          300,
        ),
        "safety across the restart",
      ).toEqual([]);
      expect(line(second.proc, (l) => String(l.msg).startsWith("FAULT"))).toBeUndefined();
      expect(modeLine(second.proc, ["startup", "flash", "fault"])).toBeUndefined();
      console.log(
        `[restart] ${module}: kill -9 in M's green (${String(killAt - greenFrom)} ms in), resumed: kill to the start-up decision ${String(decidedAt - killAt)} ms (process down ${String(second.startedAt - killAt)} ms); M green ${String((yellow?.from ?? 0) - (green?.from ?? 0))} ms in all, no flash, no fault; first cycle after it ${String(offsetErrorMs)} ms off its offset (the walk's minimum run again from the take-over ${String(takeoverMs)} ms into the stage: ${String(walkOverrunMs)} ms past its window)`,
      );
    },
    150_000,
  );

  it("kill -9, and the intersection file changed before the restart: the full start-up, the green cleared through its yellow", async () => {
    const r = await rig("long");
    const first = gateway(r);
    await running(first);
    await midGreen(r.control, 1000, 6000);
    const killAt = Date.now();
    first.proc.child.kill("SIGKILL");
    await first.exited;
    edit(r.intersection, (t) =>
      t.replace(
        "{ id: S, kind: vehicle, minGreenSeconds: 5, yellowSeconds: 3",
        "{ id: S, kind: vehicle, minGreenSeconds: 5, yellowSeconds: 4",
      ),
    );
    const second = gateway(r);
    const decided = await until("the start-up decision", 15_000, () => startUpOf(second.proc));
    expect(decided.startUp.how, second.proc.out).toBe("cold");
    expect(decided.previousRun.previous).toBe("unknown");
    expect(decided.previousRun.why).toContain("intersection configuration changed");
    await running(second, 40_000);
    const entries = await readHistory(r.control);
    // From the lamps in force at the kill on.
    const after = entries.slice(entries.indexOf(entryAt(entries, killAt) as HistoryEntry));
    // M's green, held by the module, is cleared through its yellow; then the start-up flash.
    const m = runsOf(after, "M");
    expect(
      m.slice(0, 3).map((run) => run.lamp),
      JSON.stringify(m),
    ).toEqual(["G", "Y", "R"]);
    expect(after.some(vehicleDark), "a start-up flash after the restart").toBe(true);
    expect(
      lampViolations(FIXTURE_LAYOUT, entries as Parameters<typeof lampViolations>[1], [], 300),
      "safety across the restart",
    ).toEqual([]);
    expect(line(second.proc, (l) => String(l.msg).startsWith("FAULT"))).toBeUndefined();
  }, 150_000);

  it("a process stalled past the module's watchdog latches a fault instead of writing the dropped green again", async () => {
    const r = await rig("default");
    const g = gateway(r);
    await running(g);
    await midGreen(r.control, 300, 6000);
    g.proc.child.kill("SIGSTOP");
    await new Promise((done) => setTimeout(done, 2500)); // the fixture's watchdog: 1 s
    // The module is a process of its own: on a loaded machine its watchdog may fire late. The gateway
    // goes on only once the module says it dropped the lamps (what this test is about).
    const dropped = async () =>
      (
        (await (await fetch(`${r.control}/state`)).json()) as {
          watchdog: { inSafeState: boolean };
        }
      ).watchdog.inSafeState;
    for (const giveUp = Date.now() + 15_000; !(await dropped());) {
      if (Date.now() > giveUp) throw new Error("the module's watchdog did not drop the lamps within 15 s");
      await new Promise((done) => setTimeout(done, 100));
    }
    const resumedAt = Date.now();
    g.proc.child.kill("SIGCONT");
    const fault = await until("the fault", 10_000, () =>
      line(g.proc, (l) => String(l.msg).startsWith("FAULT latched")),
    );
    const message = String(fault.msg);
    expect(message).toMatch(
      /device io1 lost: no write reached it for \d+ ms, longer than its watchdog \(1000 ms\)/,
    );
    expect(message).toContain("reset the fault");
    await new Promise((done) => setTimeout(done, 1500));
    const entries = await readHistory(r.control);
    const trip = entries.find((e) => e.cause === "watchdog");
    expect(trip, "the module's own watchdog dropped the lamps").toBeDefined();
    // After the drop, never a green or a walk again: fault flash (vehicle reds flashing, walks dark).
    const later = entries.filter((e) => e.t > (trip?.t ?? 0));
    expect(later.filter(goes).map((e) => `${e.t} ${e.outputs}`)).toEqual([]);
    expect(later.some(vehicleDark), "fault flash after the stall").toBe(true);
    console.log(
      `[restart] SIGSTOP for 2.5 s: module dropped the lamps at ${String(trip?.t)}, fault latched ${String(logTime(fault) - resumedAt)} ms after SIGCONT: ${message.slice(0, 160)}`,
    );
  }, 90_000);
});
