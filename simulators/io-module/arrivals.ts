import { uniformFloat64 } from "pure-rand/distribution/uniformFloat64";
import { xoroshiro128plus, xoroshiro128plusFromState } from "pure-rand/generator/xoroshiro128plus";
import { inputChannels, type ModuleModel } from "./module-model.js";

/**
 * Traffic at a simulated module's detector inputs: vehicles over loops and people at push buttons,
 * arriving at random (Poisson) at a given rate per hour, each holding its input on for a while.
 *
 * The process is pure and seeded: `planArrivals(specs, seed)` is its start, `nextChanges(state, untilMs)`
 * the input changes up to a time (ms since the start) and the state after them. The same specs and seed
 * give the same changes, whatever the slicing of time into calls. `startArrivals` drives a ModuleModel
 * from it on a timer.
 *
 * - vehicle: each vehicle is a presence pulse of 0.3–1.2 s (uniform) on its loop;
 * - pedestrian: each press of the push button holds it 0.2–0.5 s (uniform).
 * Pulses that overlap on one channel merge: the input stays on until the last of them ends, so the
 * changes of a channel alternate on, off, on… Every arrival and press counts, merged or not.
 *
 * Each channel draws from its own generator (the project's generator, pure-rand's xoroshiro128+, seeded
 * from the seed and the channel number), so adding a channel leaves the others' traffic as it was.
 */

export type ArrivalKind = "vehicle" | "pedestrian";

export interface ArrivalSpec {
  /** Discrete input channel (0-based, as the module's inputs and the intersection file's `input:`). */
  readonly channel: number;
  /** Vehicles (or presses) per hour, > 0 and at most MAX_RATE_PER_HOUR. */
  readonly ratePerHour: number;
  readonly kind: ArrivalKind;
}

export interface InputChange {
  /** ms since the start of the process. */
  readonly atMs: number;
  readonly channel: number;
  readonly on: boolean;
}

/** A rate above this is refused: 2 a second, far over a lane's saturation flow (about 1,800 an hour). */
export const MAX_RATE_PER_HOUR = 7_200;

/**
 * At most this many changes come from one nextChanges call; past it the call stops early (`complete`
 * false) and the next call, with the same or a later `untilMs`, carries on where it stopped: nothing is
 * dropped, the changes are only paged.
 */
export const MAX_CHANGES_PER_CALL = 1_024;

/** At most this many arrivals (merged or not) and offs are worked through in one call, likewise paged. */
const MAX_EVENTS_PER_CALL = 4 * MAX_CHANGES_PER_CALL;

/** How long a pulse holds its input, ms. */
export const PULSE_MS: Readonly<Record<ArrivalKind, { readonly min: number; readonly max: number }>> = {
  vehicle: { min: 300, max: 1_200 },
  pedestrian: { min: 200, max: 500 },
};

interface ChannelState {
  /** The channel's generator (xoroshiro128+ state). */
  readonly rng: readonly number[];
  /** When the next arrival comes (it has not been worked through yet). */
  readonly nextArrivalMs: number;
  /** The input is on until then; null: off. */
  readonly offAtMs: number | null;
}

export interface ArrivalState {
  readonly specs: readonly ArrivalSpec[];
  /** By spec. */
  readonly channels: readonly ChannelState[];
  /** Vehicles and presses so far (every one, merged into another's presence or not). */
  readonly arrivals: number;
  readonly presses: number;
}

export interface ArrivalStep {
  readonly state: ArrivalState;
  /** In time order (ties: in the order of the specs); per channel alternately on and off, on first. */
  readonly changes: readonly InputChange[];
  /** False when the call stopped at its bound before untilMs: call again for the rest. */
  readonly complete: boolean;
}

/** The problem with a list of specs, or null. `inputs`: the module's discrete input count, if known. */
export function arrivalSpecsProblem(specs: readonly ArrivalSpec[], inputs?: number): string | null {
  const seen = new Set<number>();
  for (const s of specs) {
    if (!Number.isInteger(s.channel) || s.channel < 0)
      return `input channel ${String(s.channel)} is not a whole number from 0`;
    if (inputs !== undefined && s.channel >= inputs)
      return inputs === 0
        ? `input channel ${s.channel}: this module has no discrete inputs`
        : `input channel ${s.channel} is outside this module's discrete inputs 0–${inputs - 1}`;
    if (seen.has(s.channel)) return `input channel ${s.channel} is given twice`;
    seen.add(s.channel);
    if (!Number.isFinite(s.ratePerHour) || s.ratePerHour <= 0 || s.ratePerHour > MAX_RATE_PER_HOUR)
      return `input channel ${s.channel}: rate ${String(s.ratePerHour)} per hour is not above 0 and at most ${MAX_RATE_PER_HOUR}`;
    if (s.kind !== "vehicle" && s.kind !== "pedestrian")
      return `input channel ${s.channel}: kind ${String(s.kind)} is neither vehicle nor pedestrian`;
  }
  return null;
}

/** One 32-bit mix of the seed and the channel (murmur3's finaliser), so each channel has its own stream. */
function channelSeed(seed: number, channel: number): number {
  let h = Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(channel + 1, 0x85ebca6b);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

type Rng = ReturnType<typeof xoroshiro128plus>;

/** Exponential gap to the next arrival, ms (Poisson arrivals at `ratePerHour`). */
function gapMs(rng: Rng, ratePerHour: number): number {
  return (-Math.log(1 - uniformFloat64(rng)) * 3_600_000) / ratePerHour;
}

function pulseMs(rng: Rng, kind: ArrivalKind): number {
  const { min, max } = PULSE_MS[kind];
  return min + uniformFloat64(rng) * (max - min);
}

/** The process at its start (time 0, every input off). Throws a RangeError for bad specs. */
export function planArrivals(specs: readonly ArrivalSpec[], seed: number): ArrivalState {
  const problem = arrivalSpecsProblem(specs);
  if (problem !== null) throw new RangeError(problem);
  if (!Number.isInteger(seed)) throw new RangeError(`seed ${seed} is not a whole number`);
  const frozen = specs.map((s) =>
    Object.freeze({ channel: s.channel, ratePerHour: s.ratePerHour, kind: s.kind }),
  );
  return {
    specs: frozen,
    channels: frozen.map((s) => {
      const rng = xoroshiro128plus(channelSeed(seed, s.channel));
      rng.jump(); // away from the seed's weak first outputs
      const nextArrivalMs = gapMs(rng, s.ratePerHour);
      return { rng: rng.getState(), nextArrivalMs, offAtMs: null };
    }),
    arrivals: 0,
    presses: 0,
  };
}

/** When the next event (an arrival or an input going off) comes, ms; Infinity when there are no channels. */
export function nextEventMs(state: ArrivalState): number {
  return Math.min(...state.channels.map(eventMs));
}

function eventMs(c: ChannelState): number {
  return c.offAtMs === null ? c.nextArrivalMs : Math.min(c.nextArrivalMs, c.offAtMs);
}

/**
 * The input changes up to `untilMs` (included) and the state after them; the state passed in is not
 * changed. Bounded: at most MAX_CHANGES_PER_CALL changes, then `complete` is false (see there).
 */
export function nextChanges(state: ArrivalState, untilMs: number): ArrivalStep {
  if (Number.isNaN(untilMs)) throw new RangeError("untilMs is not a number");
  const rngs = state.channels.map((c) => xoroshiro128plusFromState(c.rng));
  const next = state.channels.map((c) => c.nextArrivalMs);
  const offAt = state.channels.map((c) => c.offAtMs);
  const changes: InputChange[] = [];
  let { arrivals, presses } = state;
  let complete = true;
  for (let events = 0; ; events++) {
    // The channel whose event comes first (ties: the first spec).
    let i = -1;
    let at = Infinity;
    for (let c = 0; c < next.length; c++) {
      const off = offAt[c] ?? null;
      const t = off === null ? (next[c] as number) : Math.min(next[c] as number, off);
      if (t < at) {
        at = t;
        i = c;
      }
    }
    if (i < 0 || at > untilMs) break;
    const spec = state.specs[i] as ArrivalSpec;
    const rng = rngs[i] as Rng;
    const off = offAt[i] ?? null;
    // An arrival while the input is on merges into its presence: no change.
    const arrives = off === null || (next[i] as number) <= off;
    const isChange = off === null || !arrives;
    if (events >= MAX_EVENTS_PER_CALL || (isChange && changes.length >= MAX_CHANGES_PER_CALL)) {
      complete = false;
      break;
    }
    if (arrives) {
      const end = at + pulseMs(rng, spec.kind);
      if (off === null) {
        changes.push({ atMs: at, channel: spec.channel, on: true });
        offAt[i] = end;
      } else offAt[i] = Math.max(off, end);
      if (spec.kind === "vehicle") arrivals++;
      else presses++;
      next[i] = at + gapMs(rng, spec.ratePerHour);
    } else {
      changes.push({ atMs: at, channel: spec.channel, on: false });
      offAt[i] = null;
    }
  }
  return {
    state: {
      specs: state.specs,
      channels: state.channels.map((_, c) => ({
        rng: (rngs[c] as Rng).getState(),
        nextArrivalMs: next[c] as number,
        offAtMs: offAt[c] ?? null,
      })),
      arrivals,
      presses,
    },
    changes,
    complete,
  };
}

/** Arrivals specs from the command line's SPEC. */
export class ArrivalSpecError extends Error {
  override readonly name = "ArrivalSpecError";
}

/**
 * Parses `16,17@300,20@60p`: comma-separated input channels, each run of them closed by `@RATE`, the
 * vehicles (or presses) per hour of each of those channels; a `p` after the rate makes them pedestrian
 * push buttons. So 16 and 17 get 300 vehicles an hour each, 20 gets 60 presses an hour. Throws an
 * ArrivalSpecError saying what is wrong; `inputs` (the module's discrete input count) bounds the channels.
 */
export function parseArrivalSpec(text: string, inputs?: number): ArrivalSpec[] {
  const example = "e.g. 16,17@300,20@60p";
  if (text.trim() === "") throw new ArrivalSpecError(`empty; give channels @ rate per hour, ${example}`);
  const specs: ArrivalSpec[] = [];
  let pending: number[] = [];
  const items = text.split(",");
  items.forEach((raw, n) => {
    const item = raw.trim();
    if (item === "")
      throw new ArrivalSpecError(
        `item ${n + 1} is empty (two commas in a row, or a comma at an end); ${example}`,
      );
    const at = item.indexOf("@");
    const channelText = at < 0 ? item : item.slice(0, at);
    if (!/^\d{1,5}$/.test(channelText))
      throw new ArrivalSpecError(
        channelText === ""
          ? `"${item}" has no channel before @`
          : `"${channelText}" is not an input channel (a whole number, 0-based); ${example}`,
      );
    pending.push(Number(channelText));
    if (at < 0) return;
    const rateText = item.slice(at + 1);
    const match = /^(\d+(?:\.\d+)?)(p?)$/.exec(rateText);
    const rate = match ? Number(match[1]) : NaN;
    if (!match || !(rate > 0) || rate > MAX_RATE_PER_HOUR)
      throw new ArrivalSpecError(
        `"@${rateText}" is not a rate: vehicles (or presses) per hour, above 0 and at most ${MAX_RATE_PER_HOUR}, with a p after it for push buttons (e.g. @300 or @60p)`,
      );
    const kind: ArrivalKind = match[2] === "p" ? "pedestrian" : "vehicle";
    for (const channel of pending) specs.push({ channel, ratePerHour: rate, kind });
    pending = [];
  });
  if (pending.length > 0)
    throw new ArrivalSpecError(
      `channel${pending.length > 1 ? "s" : ""} ${pending.join(",")} at the end ${pending.length > 1 ? "have" : "has"} no @RATE; ${example}`,
    );
  const problem = arrivalSpecsProblem(specs, inputs);
  if (problem !== null) throw new ArrivalSpecError(problem);
  return specs;
}

export interface ArrivalsOptions {
  readonly seed: number;
  /** Monotonic clock, ms (default performance.now). */
  readonly monoNow?: () => number;
}

export interface RunningArrivals {
  /** Stops the timer and sets the process's inputs off (no vehicle left standing on a loop). */
  stop(): void;
  /** Vehicles and presses so far. */
  readonly counters: { arrivals: number; presses: number };
}

/** The timer never sleeps longer than this, so a far next arrival needs no huge timeout. */
const MAX_WAIT_MS = 60_000;

/**
 * Drives `model`'s detector inputs from the arrival process, from now on: its channels go off at once
 * (they read as detectors, not lamp feedback, from then on), then follow the process. One timer at a
 * time, unref'd (it keeps no process alive); a late timer applies every change due, in order. Throws a
 * RangeError for specs that do not fit the module (see arrivalSpecsProblem).
 */
export function startArrivals(
  model: ModuleModel,
  specs: readonly ArrivalSpec[],
  options: ArrivalsOptions,
): RunningArrivals {
  const problem = arrivalSpecsProblem(specs, inputChannels(model.profile));
  if (problem !== null) throw new RangeError(problem);
  const now = options.monoNow ?? (() => performance.now());
  let state = planArrivals(specs, options.seed);
  const start = now();
  const counters = { arrivals: 0, presses: 0 };
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  for (const s of state.specs) model.setDetectorInput(s.channel, false);
  const run = () => {
    timer = null;
    if (stopped) return;
    const step = nextChanges(state, now() - start);
    state = step.state;
    for (const c of step.changes) model.setDetectorInput(c.channel, c.on);
    counters.arrivals = state.arrivals;
    counters.presses = state.presses;
    const wait = step.complete ? Math.min(Math.max(0, nextEventMs(state) - (now() - start)), MAX_WAIT_MS) : 0;
    timer = setTimeout(run, Math.ceil(wait));
    timer.unref();
  };
  run();
  return {
    counters,
    stop() {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
      for (const s of state.specs) model.setDetectorInput(s.channel, false);
    },
  };
}
