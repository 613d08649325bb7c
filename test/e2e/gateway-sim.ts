import { type ChildProcess, spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { FIXTURE, writeFixture } from "../support/fixture-intersection.js";
import { openPtyPair, type PtyPair } from "../support/pty-pair.js";
import { hasTool } from "../support/tools.js";
import { buildOnce, CLI } from "./cli.js";
import { interruptTwice } from "./processes.js";
import { decode, type GroupId, GROUPS } from "../support/lamp-history.js";

/**
 * The gateway against the I/O-module simulator, both as processes started the way a user starts them.
 * What the lamps did is proved from the simulator's recorded output history, not from the gateway's
 * own account.
 */

export interface Proc {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  text: () => string;
}

const procs: Proc[] = [];
const cleanups: (() => Promise<void> | void)[] = [];

/** Call at the top of a test file: after each test, stops the processes it started and cleans up. */
export function registerProcessHooks(): void {
  afterEach(async () => {
    for (const p of procs.splice(0)) {
      if (p.child.exitCode === null && p.child.signalCode === null) await interruptTwice(p.child);
    }
    for (const c of cleanups.splice(0)) await c();
  });
}

/** How a greenwave command is started: the compiled CLI under the machine's node, or an installed one. */
export type Launcher = readonly string[];
const COMPILED: Launcher = ["node", CLI];

/** Starts `greenwave ARGS` through the launcher; its JSON log lines are kept in `lines`. */
export function start(args: string[], launcher: Launcher = COMPILED): Proc {
  const [command, ...prefix] = launcher as [string, ...string[]];
  const child = spawn(command, [...prefix, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const lines: Record<string, unknown>[] = [];
  let raw = "";
  let buffer = "";
  const take = (d: Buffer) => {
    raw += d.toString();
    buffer += d.toString();
    const parts = buffer.split("\n");
    buffer = parts.pop() ?? "";
    for (const line of parts) {
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a JSON log line
      }
    }
  };
  child.stdout?.on("data", take);
  child.stderr?.on("data", take);
  const proc = { child, lines, text: () => raw };
  procs.push(proc);
  return proc;
}

export async function until<T>(
  what: string,
  ms: number,
  probe: () => T | undefined | null | false,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface Sim {
  proc: Proc;
  control: string;
  link: string;
}

export async function startSim(transport: "tcp" | "rtu", launcher: Launcher = COMPILED): Promise<Sim> {
  let pty: PtyPair | null = null;
  if (transport === "rtu") {
    pty = await openPtyPair();
    const p = pty;
    cleanups.push(() => p.close());
  }
  const proc = start(
    ["sim", "io-module", ...(pty ? ["--serial", pty.a] : ["--tcp", "0"]), "--control", "0"],
    launcher,
  );
  const listening = await until("the simulator to listen", 10_000, () =>
    proc.lines.find((l) => l.event === "listening"),
  );
  const link = pty ? `{ serial: "${pty.b}" }` : `{ tcp: "127.0.0.1:${listening.modbusPort}" }`;
  return { proc, control: listening.control as string, link };
}

function startGateway(sim: Sim, dataDir?: string, fixture = writeFixture(sim.link)) {
  cleanups.push(() => rmSync(fixture.dir, { recursive: true, force: true }));
  const gateway = start([
    "gateway",
    "--config",
    fixture.intersection,
    "--data-dir",
    dataDir ?? fixture.dataDir,
  ]);
  return { gateway, fixture };
}

async function setFaults(sim: Sim, faults: Record<string, unknown>): Promise<number> {
  const at = Date.now();
  const res = await fetch(`${sim.control}/faults`, { method: "PUT", body: JSON.stringify(faults) });
  expect(res.status).toBe(200);
  return at;
}

interface HistoryEntry {
  t: number;
  outputs: string;
  cause: string;
}

export async function history(sim: Sim): Promise<HistoryEntry[]> {
  return ((await (await fetch(`${sim.control}/history`)).json()) as { entries: HistoryEntry[] }).entries;
}

export const logTime = (line: Record<string, unknown>) => Date.parse(line.time as string);
export const cycleStarts = (p: Proc) =>
  p.lines.filter((l) => (l.event as { type?: string } | undefined)?.type === "cycle-start");
/**
 * The cycle boundaries: cycle starts less the start-up's entry into the cycle (it enters at the stage the
 * clock says, mid-cycle; core/start-up.ts). At a boundary the plan's first stage starts.
 */
export const cycleBoundaries = (p: Proc) =>
  cycleStarts(p).filter((l) => (l.event as { entered?: string } | undefined)?.entered === undefined);
export const faultLine = (p: Proc) => p.lines.find((l) => String(l.msg).startsWith("FAULT latched"));

const permissive = (a: GroupId, b: GroupId) =>
  FIXTURE.permissive.some(([x, y]) => (x === a && y === b) || (x === b && y === a));
const active = (id: GroupId, lamp: string) =>
  FIXTURE.groups[id].kind === "vehicle" ? lamp.includes("G") || lamp.includes("Y") : lamp.includes("W");

/** Allowance for write-arrival jitter between the gateway's tick and the simulator's clock. */
const JITTER_MS = 80;

/** Checks the safety rules over a recorded history window; returns the green/walk starts per group. */
function verifyHistory(entries: HistoryEntry[]): Record<GroupId, number[]> {
  const starts = Object.fromEntries(GROUPS.map((g) => [g, [] as number[]])) as Record<GroupId, number[]>;
  const since = {} as Record<GroupId, { lamp: string; t: number }>;
  const inactiveSince = {} as Record<GroupId, number>;
  for (const entry of entries) {
    const lamps = decode(entry.outputs);
    for (const a of GROUPS) {
      for (const b of GROUPS) {
        if (a < b && active(a, lamps[a]) && active(b, lamps[b]) && !permissive(a, b)) {
          throw new Error(`conflict at ${entry.t}: ${a}=${lamps[a]} ${b}=${lamps[b]}`);
        }
      }
    }
    for (const id of GROUPS) {
      const g = FIXTURE.groups[id];
      const prev = since[id];
      const lamp = lamps[id];
      if (prev && prev.lamp === lamp) continue;
      if (prev) {
        const shown = entry.t - prev.t;
        if (prev.lamp === "G") {
          expect(lamp, `${id} after green`).toBe("Y");
          expect(shown, `${id} green`).toBeGreaterThanOrEqual(g.minGoMs - JITTER_MS);
        }
        if (prev.lamp === "Y") {
          expect(lamp, `${id} after yellow`).toBe("R");
          expect(shown, `${id} yellow`).toBeGreaterThanOrEqual(g.clearanceMs - JITTER_MS);
        }
        if (prev.lamp === "W") expect(shown, `${id} walk`).toBeGreaterThanOrEqual(g.minGoMs - JITTER_MS);
        if (active(id, prev.lamp) && !active(id, lamp)) {
          // Vehicle: red clearance counts from the end of yellow. Pedestrian: clearance and red clearance from the end of walk.
          inactiveSince[id] =
            entry.t + (g.kind === "vehicle" ? g.redClearanceMs : g.clearanceMs + g.redClearanceMs);
        }
      }
      if (active(id, lamp) && (!prev || !active(id, prev.lamp))) {
        starts[id].push(entry.t);
        for (const other of GROUPS) {
          if (other === id || permissive(id, other) || inactiveSince[other] === undefined) continue;
          expect(entry.t, `${id} started before ${other}'s clearance ended`).toBeGreaterThanOrEqual(
            (inactiveSince[other] as number) - JITTER_MS,
          );
        }
      }
      since[id] = { lamp, t: entry.t };
    }
  }
  return starts;
}

/**
 * The plan's assertions over two full cycles of a running gateway: the simulator's recorded lamps
 * follow the plan's stages in order, with no conflict, every clearance complete, no fault, and a cycle
 * of the plan's length. Waits for the cycles (bounded by what it waits for).
 */
/** The start-up, then at most the rest of the cycle it enters (lengthened by the +20 % correction), and slack. */
const FIRST_BOUNDARY_MS = FIXTURE.startupMs + FIXTURE.cycleMs * 1.2 + 10_000;

export async function expectTwoCyclesFollowPlan(sim: Sim, gateway: Proc): Promise<void> {
  // Bound from what it waits for: the start-up, the rest of the cycle it enters, then two cycles, each
  // stretched by at most the plan's +20 % shortway correction, plus 10 s of slack.
  const boundMs = FIXTURE.startupMs + 3 * FIXTURE.cycleMs * 1.2 + 10_000;
  await until(
    "two full cycles (three cycle boundaries)",
    boundMs,
    () => cycleBoundaries(gateway).length >= 3,
  );
  const [first, , third] = cycleBoundaries(gateway);
  const from = logTime(first as Record<string, unknown>) - 200;
  const to = logTime(third as Record<string, unknown>) + 200;
  const entries = (await history(sim)).filter((e) => e.t >= from && e.t <= to);
  expect(faultLine(gateway), gateway.text()).toBeUndefined();
  const starts = verifyHistory(entries);
  // Stage order: M with PS, then S with PM, every cycle.
  expect(starts.M.length).toBeGreaterThanOrEqual(2);
  expect(starts.S.length).toBeGreaterThanOrEqual(2);
  for (let k = 0; k < 2; k++) {
    expect(Math.abs((starts.PS[k] as number) - (starts.M[k] as number))).toBeLessThanOrEqual(JITTER_MS);
    expect(Math.abs((starts.PM[k] as number) - (starts.S[k] as number))).toBeLessThanOrEqual(JITTER_MS);
    expect(starts.S[k] as number).toBeGreaterThan(starts.M[k] as number);
  }
  // A cycle lasts the plan's 30 s, give or take what the shortway correction allows (+20 % / −15 %).
  const cycle = (starts.M[1] as number) - (starts.M[0] as number);
  expect(cycle).toBeGreaterThanOrEqual(FIXTURE.cycleMs * 0.85 - 600);
  expect(cycle).toBeLessThanOrEqual(FIXTURE.cycleMs * 1.2 + 600);
}

/** The test body, shared by one file per transport so that vitest runs them in parallel. */
export function defineGatewaySimTests(transport: "tcp" | "rtu"): void {
  if (transport === "rtu" && !hasTool("socat", "the gateway end-to-end test over RTU (pseudo-terminal pair)"))
    return;
  registerProcessHooks();
  beforeAll(buildOnce, 180_000);
  describe(`greenwave gateway against the simulated module over ${transport}`, () => {
    it("runs two full cycles: the recorded lamps follow the plan, with no conflict and every clearance complete", async () => {
      const sim = await startSim(transport);
      const { gateway } = startGateway(sim);
      await expectTwoCyclesFollowPlan(sim, gateway);
    }, 180_000);

    it("a dark lamp ends in latched flash within the red-fail window", async () => {
      const sim = await startSim(transport);
      const { gateway } = startGateway(sim);
      await until("the first cycle boundary", FIRST_BOUNDARY_MS, () => cycleBoundaries(gateway).length >= 1);
      await new Promise((r) => setTimeout(r, 500)); // M is green (main stage, at least 5 s)
      const injected = await setFaults(sim, { dark: [2] });
      const fault = await until("the fault", 5_000, () => faultLine(gateway));
      expect((fault.latch as { kind: string }).kind).toBe("red-fail");
      expect(logTime(fault) - injected).toBeLessThanOrEqual(800 + 500);
      await new Promise((r) => setTimeout(r, 1500));
      const after = (await history(sim))
        .filter((e) => e.t > logTime(fault) + 100)
        .map((e) => decode(e.outputs));
      // Malfunction flash: vehicle reds flashing together, pedestrian heads dark.
      expect(after.some((l) => l.M === "R" && l.S === "R")).toBe(true);
      expect(after.some((l) => l.M === "-" && l.S === "-")).toBe(true);
      expect(
        after.every((l) => l.PS === "-" && l.PM === "-" && !l.M.includes("G") && !l.S.includes("G")),
      ).toBe(true);
    }, 60_000);

    it.runIf(transport === "tcp")(
      "a stuck relay ends in latched flash within the mismatch window; the latch survives a restart until an operator clears it",
      async () => {
        const sim = await startSim(transport);
        const { gateway, fixture } = startGateway(sim);
        await until(
          "the first cycle boundary",
          FIRST_BOUNDARY_MS,
          () => cycleBoundaries(gateway).length >= 1,
        );
        await setFaults(sim, { stuck: [2] }); // M's green relay welded on
        const fault = await until("the fault", 30_000, () => faultLine(gateway));
        expect(["feedback-mismatch", "observed-conflict"]).toContain((fault.latch as { kind: string }).kind);
        // The gateway commanded M yellow while green stayed on: the fault follows within the 1 s window.
        const yellowAt = (await history(sim)).find((e) => decode(e.outputs).M === "Y+G")?.t as number;
        expect(yellowAt).toBeGreaterThan(0);
        expect(logTime(fault) - yellowAt).toBeLessThanOrEqual(1000 + 500);
        gateway.child.kill("SIGTERM");
        await new Promise((r) => gateway.child.once("exit", r));
        const again = start(["gateway", "--config", fixture.intersection, "--data-dir", fixture.dataDir]);
        const restored = await until("the restored latch", 10_000, () =>
          again.lines.find((l) => String(l.msg).startsWith("starting in fault flash")),
        );
        expect(String(restored.msg)).toContain("feedback");
        again.child.kill("SIGTERM");
        await new Promise((r) => again.child.once("exit", r));
        // The operator clears the latch at the cabinet; the gateway restarts through flash and all-red.
        await setFaults(sim, {});
        const clear = start([
          "fault",
          "clear",
          "--intersection",
          "x1",
          "--data-dir",
          fixture.dataDir,
          "--by",
          "tech 42",
        ]);
        await new Promise((r) => clear.child.once("exit", r));
        expect(clear.text()).toContain("cleared feedback-mismatch at x1");
        const clean = start(["gateway", "--config", fixture.intersection, "--data-dir", fixture.dataDir]);
        await until("start-up after the reset", 15_000, () =>
          clean.lines.find(
            (l) => (l.event as { type?: string; previous?: string } | undefined)?.previous === "startup",
          ),
        );
        expect(clean.lines.some((l) => String(l.msg).startsWith("starting in fault flash"))).toBe(false);
      },
      60_000,
    );

    it.runIf(transport === "tcp")(
      "a module that stops answering ends in flash, and its watchdog drops it to the safe state",
      async () => {
        const sim = await startSim(transport);
        const { gateway } = startGateway(sim);
        await until(
          "the first cycle boundary",
          FIRST_BOUNDARY_MS,
          () => cycleBoundaries(gateway).length >= 1,
        );
        const injected = await setFaults(sim, { noAnswer: true });
        const fault = await until("the fault", 5_000, () => faultLine(gateway));
        expect((fault.latch as { kind: string }).kind).toBe("device-lost");
        expect(logTime(fault) - injected).toBeLessThanOrEqual(1000 + 2 * 200 * 2 + 500);
        // No write reaches the module any more: after its 1 s watchdog it shows steady red and DON'T WALK.
        const deadline = Date.now() + 5_000;
        let state: { watchdog: { inSafeState: boolean }; coils: string };
        do {
          state = (await (await fetch(`${sim.control}/state`)).json()) as typeof state;
          if (state.watchdog.inSafeState) break;
          await new Promise((r) => setTimeout(r, 100));
        } while (Date.now() < deadline);
        expect(state.watchdog.inSafeState).toBe(true);
        expect(state.coils.slice(0, 10)).toBe("1001001010");
      },
      60_000,
    );
  });
}
