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
import type { Aspect, Detector, IntersectionPlan } from "../../gateway/core/model.js";
import { throughGroup } from "../../gateway/core/progression/index.js";
import type { SignalEvent } from "../../gateway/core/sequencer.js";
import { ControllerShell } from "../../gateway/shell/controller-shell.js";
import { MemoryLatchStore } from "../../gateway/shell/latch-store.js";
import {
  ADVANCE_M,
  FcdReader,
  type Interval,
  mean,
  passedAt,
  readTripinfo,
  sideStreetEntry,
  StoppedOnEdgeReader,
  stopsAfter,
  type TripSummary,
  within,
} from "./fcd-figures.js";
import { stopBarLoopsByDetector } from "./loop-inputs.js";
import {
  buildCorridorNetwork,
  type CorridorNetwork,
  signalState,
  type TrafficLightMap,
} from "./network/index.js";
import { mulberry32 } from "./mulberry32.js";
import { startSumo } from "./traci/index.js";

/**
 * A corridor's controllers driving SUMO's signals, much faster than real time: every intersection's
 * real controller (sequencer, monitor, controller) through the same interpreter the gateway runs
 * (ControllerShell), on a virtual clock that advances with SUMO's, tick by tick; each tick's aspects
 * become the SUMO traffic lights' states (network/signal-state.ts), then SUMO steps. What traffic
 * did comes from SUMO's own records (fcd-figures.ts).
 *
 * Detectors (issue 18, docs/detectors.md): after each step the stop-bar loops that feed an
 * intersection's detectors (loop-inputs.ts: the loops of one group share the detector that calls it,
 * OR'd) are read over TraCI — a vehicle on the loop during the last step is presence — and the next
 * tick hands them to the controller after its readback, as `{type: "detectors"}` in detector order, as
 * the gateway reads its inputs with the lamps. A detector no loop feeds reads off. Push buttons have
 * no loop: each is pressed at random (a Poisson process, `pedestrianPressesPerHour`, drawn from the
 * run's seed, so a run is reproducible), held for PRESS_MS.
 */

/** The controllers' tick and SUMO's step: the lamps change on this grid, as on the pole. */
export const STEP_MS = 100;
/** The most simulated time one run may take (a bound on a loop over a child process): 12 hours. */
export const MAX_RUN_S = 12 * 3600;
/** Push-button presses per hour per button, unless told otherwise. */
export const DEFAULT_PRESSES_PER_HOUR = 60;
/** How long a push button is held: three of the controller's readings. */
export const PRESS_MS = 300;
/** SUMO's floating-car data period (s): what the stops and the waits are read from. */
const FCD_PERIOD_S = 0.5;

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
  /**
   * Presses per hour of every push button: a Poisson process per button drawn from `seed` (the same
   * seed, the same presses). Default DEFAULT_PRESSES_PER_HOUR; 0: no button is ever pressed.
   */
  readonly pedestrianPressesPerHour?: number;
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

/** Vehicles that entered from a side street (their flow's origin is a side leg), departed in the measured period and arrived. */
export interface SideStreetFigures {
  readonly vehicles: number;
  /** SUMO's timeLoss over the whole trip: the time lost against driving at the desired speed. */
  readonly meanDelayS: number;
  /** Time stopped on the side-street approach it entered by: waiting for that signal (fcd, 0.5 s samples). */
  readonly meanApproachWaitS: number;
  readonly meanTravelTimeS: number;
  /** Every stop of the trip (SUMO's waitingCount). */
  readonly stopsPerVehicle: number;
}

/** What an intersection's controller did in the measured period. */
export interface IntersectionActuation {
  /** The actuated stages' ends, by stage id (stage-terminated events). */
  readonly terminations: Readonly<Record<string, { gapOut: number; maxOut: number; forceOff: number }>>;
  /** By group id: how many greens (walks) started, and how long they lasted in all. */
  readonly greens: Readonly<Record<string, { readonly starts: number; readonly seconds: number }>>;
  /** Push-button presses (all the intersection's buttons). */
  readonly pedestrianPresses: number;
  /** Detectors the controller marked failed (the whole run): a run that feeds them has none. */
  readonly detectorFailures: readonly string[];
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
  /** Corridor-long trips of both directions together (stops downstream: after each one's first intersection). */
  readonly mainStreet: DirectionFigures;
  /** Every vehicle that entered from a side street, and by the intersection it entered at. */
  readonly sideStreets: SideStreetFigures & {
    readonly byIntersection: Readonly<Record<string, SideStreetFigures>>;
  };
  /** Per intersection, corridor order: the share of corridor-long arrivals on the through group's green. */
  readonly intersections: readonly {
    readonly id: string;
    readonly arrivalsOnGreen: { readonly eastbound: number | null; readonly westbound: number | null };
    readonly actuation: IntersectionActuation;
  }[];
  /** The stop-bar loops read after every step (one TraCI round trip each) and the wall time it took. */
  readonly detectorReads: { readonly loops: number; readonly wallMs: number };
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

/** A push button's presses: a Poisson process from its own seeded generator. */
interface PressProcess {
  readonly random: () => number;
  /** Mean presses per ms (0: never). */
  readonly ratePerMs: number;
  nextPressMs: number;
  heldUntilMs: number;
}

interface Controlled {
  readonly id: string;
  readonly tlsId: string;
  /** Its SUMO traffic light: which group each character of the state string shows. */
  readonly light: TrafficLightMap;
  readonly shell: ControllerShell;
  readonly plan: IntersectionPlan;
  readonly through: number;
  readonly detectors: readonly Detector[];
  /** By detector index: the stop-bar loops that feed it (loop-inputs.ts); empty for none. */
  readonly detectorLoops: readonly (readonly string[])[];
  /** By detector index: whether a vehicle was on one of its loops in SUMO's last step. */
  readonly vehicleOn: boolean[];
  /** By detector index: a push button's presses (null for a vehicle detector). */
  readonly buttons: readonly (PressProcess | null)[];
  aspects: readonly Aspect[];
  lastState: string | null;
  /** The through group's greens, simulated seconds. */
  readonly greens: Interval[];
  greenSince: number | null;
  /** The controller's time as of the event being dispatched (ms): for the signal hook. */
  nowMs: number;
  readonly counts: Counts;
}

/** What a controller did, counted in the measured period. */
interface Counts {
  readonly terminations: Map<string, { gapOut: number; maxOut: number; forceOff: number }>;
  /** By group index: when its current go interval started (s), null while it is not in one. */
  readonly goSince: (number | null)[];
  readonly goStarts: number[];
  readonly goSeconds: number[];
  presses: number;
  readonly detectorFailures: string[];
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
    const controlled = controllersFor(options, network, plan, warmupS);
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
    let loopReadMs = 0;
    const faults: string[] = [];
    let sumoVersion = "?";
    try {
      sumoVersion = (await sumo.client.getVersion()).identifier;
      const steps = Math.round((totalS * 1000) / STEP_MS);
      for (let k = 1; k <= steps; k++) {
        const nowMs = k * STEP_MS;
        const states = new Map<string, string>();
        for (const c of controlled) {
          tick(c, nowMs, faults, warmupS);
          const state = signalState(c.light, c.aspects);
          if (state !== c.lastState) states.set(c.tlsId, state);
          c.lastState = state;
        }
        await sumo.client.stepWith(states, nowMs / 1000);
        if (options.checkSignals)
          for (const c of controlled)
            if ((await sumo.client.trafficLightGetState(c.tlsId)) !== c.lastState) mismatches++;
        const readStarted = performance.now();
        for (const c of controlled)
          for (let d = 0; d < c.detectorLoops.length; d++) {
            let on = false;
            // Any vehicle on any of the detector's loops (one round trip each; the rest are skipped once one is on).
            for (const loop of c.detectorLoops[d] as readonly string[])
              if (!on && (await sumo.client.inductionLoopVehicleCount(loop)) > 0) on = true;
            c.vehicleOn[d] = on;
          }
        loopReadMs += performance.now() - readStarted;
        if (k % 600 === 0) options.onProgress?.(nowMs / 1000);
      }
    } finally {
      await sumo.stop();
    }
    for (const c of controlled) {
      if (c.greenSince !== null) c.greens.push({ fromS: c.greenSince, toS: totalS });
      c.counts.goSince.forEach((since, g) => {
        if (since !== null)
          c.counts.goSeconds[g] = (c.counts.goSeconds[g] ?? 0) + totalS - Math.max(since, warmupS);
      });
    }
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
      detectorReads: {
        loops: controlled.reduce((n, c) => n + c.detectorLoops.flat().length, 0),
        wallMs: loopReadMs,
      },
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
  warmupS: number,
): Controlled[] {
  return options.intersections.map((loaded, index) => {
    const intersection = loaded.intersection;
    const light = network.lights.find((l) => l.intersectionId === intersection.id);
    invariant(light !== undefined, () => `no traffic light for ${intersection.id} in the generated network`);
    const compiled = compileIntersectionPlan(intersection, plan, options.corridor);
    const through = throughGroup(intersection, compiled);
    invariant(through !== null, () => `plan ${plan.raw.id} has no through group at ${intersection.id}`);
    const detectors = intersection.detectors ?? [];
    const pressesPerHour = options.pedestrianPressesPerHour ?? DEFAULT_PRESSES_PER_HOUR;
    invariant(
      Number.isFinite(pressesPerHour) && pressesPerHour >= 0,
      () => `pedestrian presses per hour must be a number ≥ 0, got ${pressesPerHour}`,
    );
    const c: Controlled = {
      id: intersection.id,
      tlsId: light.tlsId,
      light,
      plan: compiled,
      through,
      detectors,
      detectorLoops: stopBarLoopsByDetector(intersection, network.loops).byDetector,
      vehicleOn: detectors.map(() => false),
      buttons: detectors.map((d, i) =>
        d.kind === "pedestrian" ? pressProcess(pressesPerHour, options.seed, index, i) : null,
      ),
      aspects: intersection.groups.map(() => "dark"),
      lastState: null,
      greens: [],
      greenSince: null,
      nowMs: 0,
      counts: {
        terminations: new Map(),
        goSince: intersection.groups.map(() => null),
        goStarts: intersection.groups.map(() => 0),
        goSeconds: intersection.groups.map(() => 0),
        presses: 0,
        detectorFailures: [],
      },
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
        onSignal: (event) => countSignal(c, event, warmupS),
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

function tick(c: Controlled, nowMs: number, faults: string[], warmupS: number): void {
  const now = { monoMs: nowMs, wallMs: RUN_EPOCH_MS + nowMs };
  const t = nowMs / 1000;
  c.nowMs = nowMs;
  const written = c.shell.dispatch({ type: "tick" }, now);
  // The field shows exactly what was written (SUMO's lights have no lamp of their own to fail).
  if (written) c.shell.dispatch({ type: "readback", observed: written }, now);
  // The detector inputs, read with the lamps: the loops as SUMO's last step left them, the buttons now.
  if (c.detectors.length > 0) {
    const readings = c.detectors.map((_, d) => {
      const button = c.buttons[d];
      if (!button) return c.vehicleOn[d] === true;
      const presses = pressesUpTo(button, nowMs);
      if (t >= warmupS) c.counts.presses += presses;
      return nowMs < button.heldUntilMs;
    });
    c.shell.dispatch({ type: "detectors", readings }, now);
  }
  const latch = c.shell.controller.mon.latch;
  if (latch && !faults.some((f) => f.startsWith(`${c.id}:`))) faults.push(`${c.id}: ${latch.message}`);
  const green = c.aspects[c.through] === "green";
  if (green && c.greenSince === null) c.greenSince = t;
  if (!green && c.greenSince !== null) {
    c.greens.push({ fromS: c.greenSince, toS: t });
    c.greenSince = null;
  }
  const counts = c.counts;
  c.aspects.forEach((aspect, g) => {
    const go = aspect === "green" || aspect === "walk";
    const since = counts.goSince[g] ?? null;
    if (go && since === null) {
      counts.goSince[g] = t;
      if (t >= warmupS) counts.goStarts[g] = (counts.goStarts[g] ?? 0) + 1;
    } else if (!go && since !== null) {
      counts.goSince[g] = null;
      if (t > warmupS) counts.goSeconds[g] = (counts.goSeconds[g] ?? 0) + t - Math.max(since, warmupS);
    }
  });
}

function countSignal(c: Controlled, event: SignalEvent, warmupS: number): void {
  if (event.type === "detector-failed")
    c.counts.detectorFailures.push(`${(c.nowMs / 1000).toFixed(1)} s: ${event.message}`);
  if (event.type !== "stage-terminated" || c.nowMs / 1000 < warmupS) return;
  const count = c.counts.terminations.get(event.stage) ?? { gapOut: 0, maxOut: 0, forceOff: 0 };
  if (event.reason === "gap-out") count.gapOut++;
  else if (event.reason === "max-out") count.maxOut++;
  else count.forceOff++;
  c.counts.terminations.set(event.stage, count);
}

/**
 * A push button's presses: exponential gaps at `perHour`, from a generator seeded by the run's seed
 * and the button's place (intersection, detector), so that every button has its own reproducible
 * sequence whatever the others do.
 */
function pressProcess(perHour: number, seed: number, intersection: number, detector: number): PressProcess {
  const random = mulberry32(hashSeed(seed, intersection, detector));
  const ratePerMs = perHour / 3_600_000;
  const button: PressProcess = { random, ratePerMs, nextPressMs: Number.POSITIVE_INFINITY, heldUntilMs: 0 };
  if (ratePerMs > 0) button.nextPressMs = gapMs(button);
  return button;
}

function gapMs(p: PressProcess): number {
  // 1 − u lies in (0, 1]: the logarithm is finite.
  return -Math.log(1 - p.random()) / p.ratePerMs;
}

/** Moves the button's process on past `nowMs` (it is held until `heldUntilMs`); returns the presses that came. */
function pressesUpTo(p: PressProcess, nowMs: number): number {
  let presses = 0;
  while (p.nextPressMs <= nowMs) {
    p.heldUntilMs = p.nextPressMs + PRESS_MS;
    p.nextPressMs += gapMs(p);
    presses++;
  }
  return presses;
}

function hashSeed(...parts: readonly number[]): number {
  let h = 0x811c9dc5;
  for (const part of parts) h = Math.imul(h ^ (part >>> 0), 0x01000193) ^ (h >>> 13);
  return h >>> 0;
}

async function measure(
  options: TrafficRunOptions,
  network: CorridorNetwork,
  controlled: readonly Controlled[],
  files: { fcd: string; trips: string; stats: string },
  window: { warmupS: number; totalS: number },
  /** What the loop itself saw: disagreements read back from SUMO, faults latched. */
  loop: Pick<TrafficReport["safety"], "signalMismatches" | "faults">,
): Promise<
  Omit<TrafficReport, "sumoVersion" | "seed" | "warmupS" | "durationS" | "wallMs" | "plan" | "detectorReads">
> {
  const trips = readTripinfo(readFileSync(files.trips, "utf8"));
  const measured = trips.filter((t) => t.departS >= window.warmupS);
  const corridorTrips = new Map(
    measured.flatMap((t) => {
      const direction = network.directionOf(t.id);
      return direction ? [[t.id, { trip: t, direction }] as const] : [];
    }),
  );
  const sideTrips = new Map(
    measured.flatMap((t) => {
      const entry = sideStreetEntry(t.id);
      return entry ? [[t.id, { trip: t, ...entry }] as const] : [];
    }),
  );
  const fcd = new FcdReader((id) => corridorTrips.has(id));
  // The side-street approach each side-street vehicle entered by: oak.nb (from the south), oak.sb.
  const entryEdge = new Map(
    [...sideTrips].map(([id, v]) => [id, `${v.intersectionId}.${v.approach === "northbound" ? "nb" : "sb"}`]),
  );
  const waits = new StoppedOnEdgeReader((id) => entryEdge.get(id) ?? null, FCD_PERIOD_S);
  for await (const line of createInterface({ input: createReadStream(files.fcd), crlfDelay: Infinity })) {
    fcd.line(line);
    waits.line(line);
  }
  const xs = junctionX(
    network.netFile,
    controlled.map((c) => c.tlsId),
  );
  const xOf = (c: Controlled) => xs.get(c.tlsId) as number;
  const first = { eastbound: controlled[0], westbound: controlled.at(-1) };
  const corridorFigures = (list: readonly { trip: TripSummary; direction: "eastbound" | "westbound" }[]) => {
    const downstream = (v: { trip: TripSummary; direction: "eastbound" | "westbound" }) => {
      const sign = v.direction === "eastbound" ? 1 : -1;
      const start = first[v.direction];
      return stopsAfter(fcd.samples.get(v.trip.id) ?? [], start ? xOf(start) : 0, sign);
    };
    return {
      vehicles: list.length,
      meanTravelTimeS: mean(list.map((v) => v.trip.durationS)),
      stopsPerVehicleDownstream: mean(list.map(downstream)),
      stopsPerVehicle: mean(list.map((v) => v.trip.waitingCount)),
      meanDelayS: mean(list.map((v) => v.trip.timeLossS)),
    };
  };
  const direction = (name: "eastbound" | "westbound"): DirectionFigures =>
    corridorFigures([...corridorTrips.values()].filter((v) => v.direction === name));
  const sideFigures = (list: readonly { trip: TripSummary }[]): SideStreetFigures => ({
    vehicles: list.length,
    meanDelayS: mean(list.map((v) => v.trip.timeLossS)),
    meanApproachWaitS: mean(list.map((v) => waits.stoppedS.get(v.trip.id) ?? 0)),
    meanTravelTimeS: mean(list.map((v) => v.trip.durationS)),
    stopsPerVehicle: mean(list.map((v) => v.trip.waitingCount)),
  });
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
    mainStreet: corridorFigures([...corridorTrips.values()]),
    sideStreets: {
      ...sideFigures([...sideTrips.values()]),
      byIntersection: Object.fromEntries(
        controlled.map((c) => [
          c.id,
          sideFigures([...sideTrips.values()].filter((v) => v.intersectionId === c.id)),
        ]),
      ),
    },
    intersections: controlled.map((c) => ({
      id: c.id,
      arrivalsOnGreen: {
        eastbound: arrivalsOnGreen(c, "eastbound"),
        westbound: arrivalsOnGreen(c, "westbound"),
      },
      actuation: actuationOf(c),
    })),
    vehicles: { arrived: trips.length, measured: measured.length },
    safety: {
      ...loop,
      collisions: count("safety", "collisions"),
      teleports: count("teleports", "total"),
    },
  };
}

function actuationOf(c: Controlled): IntersectionActuation {
  const groups = c.shell.controller.seq.intersection.groups;
  return {
    terminations: Object.fromEntries(c.counts.terminations),
    greens: Object.fromEntries(
      groups.map((g, i) => [
        g.id,
        { starts: c.counts.goStarts[i] ?? 0, seconds: Math.round((c.counts.goSeconds[i] ?? 0) * 10) / 10 },
      ]),
    ),
    pedestrianPresses: c.counts.presses,
    detectorFailures: c.counts.detectorFailures,
  };
}
