import { createReadStream, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import {
  compileIntersectionPlan,
  type LoadedCorridor,
  type LoadedIntersection,
  type LoadedPlan,
} from "../../gateway/config/load.js";
import type { LoadedDemand } from "../../gateway/config/load-demand.js";
import { invariant } from "../../gateway/core/invariant.js";
import type { Aspect, IntersectionPlan } from "../../gateway/core/model.js";
import { throughGroup } from "../../gateway/core/progression/index.js";
import { ControllerShell } from "../../gateway/shell/controller-shell.js";
import { MemoryLatchStore } from "../../gateway/shell/latch-store.js";
import {
  ADVANCE_M,
  FcdReader,
  type Interval,
  mean,
  passedAt,
  readTripinfo,
  stopsAfter,
  within,
} from "./fcd-figures.js";
import {
  buildCorridorNetwork,
  type CorridorNetwork,
  signalState,
  type TrafficLightMap,
} from "./network/index.js";
import { startSumo } from "./traci/index.js";

/**
 * A corridor's controllers driving SUMO's signals, much faster than real time: every intersection's
 * real controller (sequencer, monitor, controller) through the same interpreter the gateway runs
 * (ControllerShell), on a virtual clock that advances with SUMO's, tick by tick; each tick's aspects
 * become the SUMO traffic lights' states (network/signal-state.ts), then SUMO steps. What traffic
 * did comes from SUMO's own records (fcd-figures.ts).
 */

/** The controllers' tick and SUMO's step: the lamps change on this grid, as on the pole. */
export const STEP_MS = 100;
/** The most simulated time one run may take (a bound on a loop over a child process): 12 hours. */
export const MAX_RUN_S = 12 * 3600;

export interface TrafficRunOptions {
  readonly corridor: LoadedCorridor;
  /** In corridor order. */
  readonly intersections: readonly LoadedIntersection[];
  readonly plan: LoadedPlan;
  readonly demand: LoadedDemand;
  /** Simulated seconds measured, after the warm-up. */
  readonly durationS: number;
  /** Simulated seconds before measuring: the controllers' start-up and transition, the network filling. */
  readonly warmupS?: number;
  readonly seed: number;
  readonly gui?: boolean;
  /** Offsets (s) instead of the plan's, by intersection id: what if the plan were laid out otherwise? */
  readonly offsetsS?: ReadonlyMap<string, number>;
  /** Reads every traffic light back from SUMO after each step and counts disagreements (tests). */
  readonly checkSignals?: boolean;
  /** Keeps SUMO's files here (default: a temporary directory, removed afterwards). */
  readonly workDir?: string;
  readonly onProgress?: (simulatedS: number) => void;
}

export interface DirectionFigures {
  /** Corridor-long trips that departed in the measured period and arrived. */
  readonly vehicles: number;
  readonly meanTravelTimeS: number;
  /** Stops after the first intersection of the direction (fcd-figures.ts). */
  readonly stopsPerVehicleDownstream: number;
  /** Every stop of the trip (SUMO's waitingCount). */
  readonly stopsPerVehicle: number;
  /** SUMO's timeLoss: the time lost against driving at the desired speed. */
  readonly meanDelayS: number;
}

export interface TrafficReport {
  readonly sumoVersion: string;
  readonly plan: {
    readonly id: string;
    readonly version: number;
    readonly offsetsS: Readonly<Record<string, number>>;
  };
  readonly seed: number;
  readonly warmupS: number;
  readonly durationS: number;
  readonly wallMs: number;
  readonly directions: { readonly eastbound: DirectionFigures; readonly westbound: DirectionFigures };
  /** Per intersection, corridor order: the share of corridor-long arrivals on the through group's green. */
  readonly intersections: readonly {
    readonly id: string;
    readonly arrivalsOnGreen: { readonly eastbound: number | null; readonly westbound: number | null };
  }[];
  readonly vehicles: { readonly arrived: number; readonly measured: number };
  readonly safety: {
    /** Steps at which a traffic light's state in SUMO differed from what the controller's lamps mean (checkSignals). */
    readonly signalMismatches: number;
    /** Controller faults latched during the run (any is a failure of the run). */
    readonly faults: readonly string[];
    readonly collisions: number;
    readonly teleports: number;
  };
}

interface Controlled {
  readonly id: string;
  readonly tlsId: string;
  /** Its SUMO traffic light: which group each character of the state string shows. */
  readonly light: TrafficLightMap;
  readonly shell: ControllerShell;
  readonly plan: IntersectionPlan;
  readonly through: number;
  aspects: readonly Aspect[];
  lastState: string | null;
  /** The through group's greens, simulated seconds. */
  readonly greens: Interval[];
  greenSince: number | null;
}

/** The plan with offsets replaced (the bench's zero and random offsets, the best-bandwidth ones). */
function withOffsets(plan: LoadedPlan, offsetsS: ReadonlyMap<string, number> | undefined): LoadedPlan {
  if (!offsetsS) return plan;
  const intersections = Object.fromEntries(
    Object.entries(plan.raw.intersections).map(([id, part]) => [
      id,
      offsetsS.has(id) ? { ...part, offsetSeconds: offsetsS.get(id) as number } : part,
    ]),
  );
  return { ...plan, raw: { ...plan.raw, intersections } };
}

/** The x of each traffic light's junction in the generated network (the corridor runs along x). */
function junctionX(netFile: string, ids: readonly string[]): Map<string, number> {
  const text = readFileSync(netFile, "utf8");
  const xs = new Map<string, number>();
  for (const id of ids) {
    const tag = new RegExp(`<junction id="${id.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}"[^>]*>`).exec(
      text,
    )?.[0];
    const x = tag ? Number(/\sx="([-\d.]+)"/.exec(tag)?.[1]) : Number.NaN;
    invariant(Number.isFinite(x), () => `junction ${id} not found in ${netFile}`);
    xs.set(id, x);
  }
  return xs;
}

export async function runTraffic(options: TrafficRunOptions): Promise<TrafficReport> {
  const started = performance.now();
  const warmupS = options.warmupS ?? defaultWarmupS(options);
  const totalS = warmupS + options.durationS;
  invariant(totalS > 0 && totalS <= MAX_RUN_S, () => `a traffic run of ${totalS} s (at most ${MAX_RUN_S})`);
  const dir = options.workDir ?? mkdtempSync(join(tmpdir(), "greenwave-traffic-"));
  try {
    const network = await buildCorridorNetwork(options.corridor, options.intersections, options.demand, dir, {
      seed: options.seed,
    });
    const plan = withOffsets(options.plan, options.offsetsS);
    const controlled = controllersFor(options, network, plan);
    const files = {
      fcd: join(dir, "fcd.xml"),
      trips: join(dir, "tripinfo.xml"),
      stats: join(dir, "statistics.xml"),
    };
    const sumo = await startSumo({
      binary: options.gui ? "sumo-gui" : "sumo",
      cwd: dir,
      args: [
        ...["-n", network.netFile, "-r", network.routesFile, "-a", network.additionalFile],
        ...["--step-length", String(STEP_MS / 1000), "--seed", String(options.seed)],
        ...["--end", String(totalS), "--no-step-log", "true", "--duration-log.disable", "true"],
        ...["--tripinfo-output", files.trips, "--statistic-output", files.stats],
        ...["--fcd-output", files.fcd, "--device.fcd.period", "0.5"],
        ...["--collision.action", "warn", "--time-to-teleport", "300"],
        ...(options.gui ? ["--start", "true", "--quit-on-end", "true"] : []),
      ],
    });
    let mismatches = 0;
    const faults: string[] = [];
    let sumoVersion = "?";
    try {
      sumoVersion = (await sumo.client.getVersion()).identifier;
      const steps = Math.round((totalS * 1000) / STEP_MS);
      for (let k = 1; k <= steps; k++) {
        const nowMs = k * STEP_MS;
        const states = new Map<string, string>();
        for (const c of controlled) {
          tick(c, nowMs, faults);
          const state = signalState(c.light, c.aspects);
          if (state !== c.lastState) states.set(c.tlsId, state);
          c.lastState = state;
        }
        await sumo.client.stepWith(states, nowMs / 1000);
        if (options.checkSignals)
          for (const c of controlled)
            if ((await sumo.client.trafficLightGetState(c.tlsId)) !== c.lastState) mismatches++;
        if (k % 600 === 0) options.onProgress?.(nowMs / 1000);
      }
    } finally {
      await sumo.stop();
    }
    for (const c of controlled)
      if (c.greenSince !== null) c.greens.push({ fromS: c.greenSince, toS: totalS });
    const report = await measure(
      options,
      network,
      controlled,
      files,
      { warmupS, totalS },
      {
        signalMismatches: mismatches,
        faults,
      },
    );
    return {
      ...report,
      sumoVersion,
      seed: options.seed,
      warmupS,
      durationS: options.durationS,
      wallMs: performance.now() - started,
      plan: {
        id: plan.raw.id,
        version: plan.raw.version,
        offsetsS: Object.fromEntries(
          Object.entries(plan.raw.intersections).map(([id, p]) => [id, p.offsetSeconds]),
        ),
      },
    };
  } finally {
    if (!options.workDir) rmSync(dir, { recursive: true, force: true });
  }
}

/** Start-up (flash + all-red), a transition of up to three cycles, and a vehicle's crossing of the corridor. */
function defaultWarmupS(options: TrafficRunOptions): number {
  const cycleS = options.plan.raw.cycleSeconds;
  return Math.ceil(20 + 3 * cycleS + 120);
}

function controllersFor(
  options: TrafficRunOptions,
  network: CorridorNetwork,
  plan: LoadedPlan,
): Controlled[] {
  return options.intersections.map((loaded) => {
    const intersection = loaded.intersection;
    const light = network.lights.find((l) => l.intersectionId === intersection.id);
    invariant(light !== undefined, () => `no traffic light for ${intersection.id} in the generated network`);
    const compiled = compileIntersectionPlan(intersection, plan, options.corridor);
    const through = throughGroup(intersection, compiled);
    invariant(through !== null, () => `plan ${plan.raw.id} has no through group at ${intersection.id}`);
    const c: Controlled = {
      id: intersection.id,
      tlsId: light.tlsId,
      light,
      plan: compiled,
      through,
      aspects: intersection.groups.map(() => "dark"),
      lastState: null,
      greens: [],
      greenSince: null,
      shell: undefined as unknown as ControllerShell,
    };
    const shell = new ControllerShell(
      intersection,
      compiled,
      new MemoryLatchStore(),
      {
        writeOutputs: (aspects) => {
          c.aspects = aspects;
        },
      },
      { monoMs: 0, wallMs: RUN_EPOCH_MS },
    );
    (c as { shell: ControllerShell }).shell = shell;
    return c;
  });
}

/**
 * The virtual wall clock's origin: a day's sync point (the plans' offsets count from it), so a run's
 * cycles sit where the plan's offsets put them whatever the corridor's sync time.
 */
const RUN_EPOCH_MS = Date.UTC(2026, 11, 1);

function tick(c: Controlled, nowMs: number, faults: string[]): void {
  const now = { monoMs: nowMs, wallMs: RUN_EPOCH_MS + nowMs };
  const written = c.shell.dispatch({ type: "tick" }, now);
  // The field shows exactly what was written (SUMO's lights have no lamp of their own to fail).
  if (written) c.shell.dispatch({ type: "readback", observed: written }, now);
  const latch = c.shell.controller.mon.latch;
  if (latch && !faults.some((f) => f.startsWith(`${c.id}:`))) faults.push(`${c.id}: ${latch.message}`);
  const green = c.aspects[c.through] === "green";
  const t = nowMs / 1000;
  if (green && c.greenSince === null) c.greenSince = t;
  if (!green && c.greenSince !== null) {
    c.greens.push({ fromS: c.greenSince, toS: t });
    c.greenSince = null;
  }
}

async function measure(
  options: TrafficRunOptions,
  network: CorridorNetwork,
  controlled: readonly Controlled[],
  files: { fcd: string; trips: string; stats: string },
  window: { warmupS: number; totalS: number },
  /** What the loop itself saw: disagreements read back from SUMO, faults latched. */
  loop: Pick<TrafficReport["safety"], "signalMismatches" | "faults">,
): Promise<Omit<TrafficReport, "sumoVersion" | "seed" | "warmupS" | "durationS" | "wallMs" | "plan">> {
  const trips = readTripinfo(readFileSync(files.trips, "utf8"));
  const measured = trips.filter((t) => t.departS >= window.warmupS);
  const corridorTrips = new Map(
    measured.flatMap((t) => {
      const direction = network.directionOf(t.id);
      return direction ? [[t.id, { trip: t, direction }] as const] : [];
    }),
  );
  const fcd = new FcdReader((id) => corridorTrips.has(id));
  for await (const line of createInterface({ input: createReadStream(files.fcd), crlfDelay: Infinity }))
    fcd.line(line);
  const xs = junctionX(
    network.netFile,
    controlled.map((c) => c.tlsId),
  );
  const xOf = (c: Controlled) => xs.get(c.tlsId) as number;
  const first = { eastbound: controlled[0], westbound: controlled.at(-1) };
  const direction = (name: "eastbound" | "westbound"): DirectionFigures => {
    const sign = name === "eastbound" ? 1 : -1;
    const list = [...corridorTrips.values()].filter((v) => v.direction === name);
    const firstX = first[name] ? xOf(first[name] as Controlled) : 0;
    return {
      vehicles: list.length,
      meanTravelTimeS: mean(list.map((v) => v.trip.durationS)),
      stopsPerVehicleDownstream: mean(
        list.map((v) => stopsAfter(fcd.samples.get(v.trip.id) ?? [], firstX, sign)),
      ),
      stopsPerVehicle: mean(list.map((v) => v.trip.waitingCount)),
      meanDelayS: mean(list.map((v) => v.trip.timeLossS)),
    };
  };
  const speedMps = ((options.corridor.raw.progressionSpeedKmh ?? 50) * 1000) / 3600;
  const arrivalsOnGreen = (c: Controlled, name: "eastbound" | "westbound"): number | null => {
    const sign = name === "eastbound" ? 1 : -1;
    const point = xOf(c) - sign * ADVANCE_M;
    let arrivals = 0;
    let onGreen = 0;
    for (const v of corridorTrips.values()) {
      if (v.direction !== name) continue;
      const at = passedAt(fcd.samples.get(v.trip.id) ?? [], point, sign);
      if (at === null) continue;
      arrivals++;
      if (within(c.greens, at + ADVANCE_M / speedMps)) onGreen++;
    }
    return arrivals === 0 ? null : onGreen / arrivals;
  };
  const stats = readFileSync(files.stats, "utf8");
  const count = (tag: string, name: string) =>
    Number(new RegExp(`<${tag}[^>]*\\s${name}="(\\d+)"`).exec(stats)?.[1] ?? 0);
  return {
    directions: { eastbound: direction("eastbound"), westbound: direction("westbound") },
    intersections: controlled.map((c) => ({
      id: c.id,
      arrivalsOnGreen: {
        eastbound: arrivalsOnGreen(c, "eastbound"),
        westbound: arrivalsOnGreen(c, "westbound"),
      },
    })),
    vehicles: { arrived: trips.length, measured: measured.length },
    safety: {
      ...loop,
      collisions: count("safety", "collisions"),
      teleports: count("teleports", "total"),
    },
  };
}
