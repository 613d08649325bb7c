import type { Aspect, Intersection, Lamps, SignalGroup } from "./model.js";

/**
 * The lamp walk test for commissioning (docs/signal-core.md, "Lamp walk test"): with the intersection
 * in scheduled flash, each output channel — every lamp of every group: red, yellow, green; DON'T WALK,
 * WALK — is lit in turn, and the readback says whether that lamp drew current. A pure machine stepped by
 * the controller's tick (which writes what it returns, through the conflict monitor as always) and fed
 * each readback.
 *
 * What the field sees, and why it is safe:
 * - Every group not under test shows the malfunction-flash picture: vehicle heads flashing red (an
 *   all-way stop), pedestrian heads dark. The groups that flash yellow in scheduled flash go through
 *   steady red for the longest red clearance first (`entry`), so that no lamp under test is ever lit
 *   beside a flashing yellow, which tells drivers to go on with caution.
 * - Only the group under test ever shows anything but red, flashing red, DON'T WALK or dark: two
 *   conflicting greens, yellows or WALKs are impossible by construction.
 * - A green or WALK under test is an interval like any other: shown at least its minimum, then its
 *   yellow or flashing DON'T WALK, then its red clearance, before anything else lights; a yellow under
 *   test is shown at least its yellow time, then red for its red clearance. The conflict monitor checks
 *   every written output exactly as in service, so a test that would cut a clearance latches a fault.
 * - The readback of the lamp under test (and of a lamp already found dark) is shown to the monitor as
 *   lit when it was commanded lit: a dead lamp is what the test is there to find, and it is reported
 *   ("no current") rather than latched. The mask only ever adds a lit lamp to what the monitor sees,
 *   never hides one: a stuck relay or a crossed channel (a lamp lit that was not commanded) still
 *   latches a fault (feedback mismatch, conflicting lamps) and ends the test in fault flash.
 * - Bounded: `lampTestBoundMs`. An abort (the operator, leaving flash, a stop) ends the lamp under test
 *   through its minimum and clearances, then the intersection shows its scheduled flash again.
 */

export const DEFAULT_LAMP_STEP_MS = 2000;
export const MIN_LAMP_STEP_MS = 1000;
export const MAX_LAMP_STEP_MS = 30_000;

/** A lamp by the name the intersection file wires it under (`channels:`). */
export type LampName = "red" | "yellow" | "green" | "dontWalk" | "walk";

export interface LampChannel {
  /** Index into Intersection.groups. */
  readonly group: number;
  readonly lamp: LampName;
}

/**
 * What the readback said of one lamp while it was lit alone: `ok` it drew current (lit in most
 * readings); `no-current` it stayed dark (dead lamp, open load, blown fuse, a channel not wired);
 * `other-lamp-lit` another lamp lit that nothing commanded (a crossed or stuck channel); `not-read` no
 * readback came (a module without feedback).
 */
export type LampVerdict = "ok" | "no-current" | "other-lamp-lit" | "not-read";

export interface LampResult {
  readonly group: string;
  readonly lamp: LampName;
  readonly verdict: LampVerdict;
  /** Readbacks while it was lit, and in how many it was lit. */
  readonly readings: number;
  readonly lit: number;
  /** Lamps lit in most readings that nothing commanded, as "S green". */
  readonly others: readonly string[];
}

export type LampTestEnd =
  | { readonly kind: "completed" }
  | { readonly kind: "aborted"; readonly by: string; readonly why: "operator" | "leave-flash" | "stop" }
  | { readonly kind: "fault"; readonly message: string };

/** Of the channel under test: lit alone, then (green, WALK) its clearance, then its red clearance. */
type Phase = "entry" | "lit" | "clearance" | "red-clearance";

interface Reading {
  readonly readings: number;
  readonly lit: number;
  readonly others: Readonly<Record<string, number>>;
}

export interface LampTestState {
  /** The command that started it (its correlation id), and who. */
  readonly id: string;
  readonly by: string;
  readonly stepMs: number;
  readonly channels: readonly LampChannel[];
  /** The channel under test (channels.length once every channel has been lit). */
  readonly index: number;
  readonly phase: Phase;
  /** The tick the phase was first shown at (monotonic); null: it begins at the next tick. */
  readonly phaseStartMs: number | null;
  readonly reading: Reading;
  readonly results: readonly LampResult[];
  /** Channels found dark: the monitor sees them lit when commanded lit, for the rest of the test. */
  readonly dark: readonly LampChannel[];
  readonly startedWallMs: number;
  /** An abort asked for: the lamp under test ends through its clearances, then the test ends. */
  readonly abort: Extract<LampTestEnd, { kind: "aborted" }> | null;
  /** Set once the test is over: the flash is shown again. */
  readonly end: LampTestEnd | null;
  readonly endedWallMs: number | null;
  /** What the controller passes to the sequencer once the test is over (an operator left flash meanwhile). */
  readonly then: "leave-flash" | null;
}

const NO_READING: Reading = { readings: 0, lit: 0, others: {} };

/** Which lamp of a head a channel lights, in the readback's terms (a pedestrian head's DON'T WALK is its red). */
function position(lamp: LampName): keyof Lamps {
  return lamp === "dontWalk" ? "red" : lamp === "walk" ? "green" : lamp;
}

function lampsOf(group: SignalGroup): readonly LampName[] {
  return group.kind === "vehicle" ? ["red", "yellow", "green"] : ["dontWalk", "walk"];
}

/** Every output channel, in the order they are lit: group by group, red (DON'T WALK) first. */
export function lampChannels(intersection: Intersection): LampChannel[] {
  return intersection.groups.flatMap((g, group) => lampsOf(g).map((lamp) => ({ group, lamp })));
}

/** What a technician reads: "M green", "PS don't walk". */
export function describeChannel(intersection: Intersection, channel: LampChannel): string {
  const id = intersection.groups[channel.group]?.id ?? `#${channel.group}`;
  return `${id} ${LAMP_WORDS[channel.lamp]}`;
}

export const LAMP_WORDS: Record<LampName, string> = {
  red: "red",
  yellow: "yellow",
  green: "green",
  dontWalk: "don't walk",
  walk: "walk",
};

function isGo(lamp: LampName): boolean {
  return lamp === "green" || lamp === "walk";
}

/** How long the entry's steady red lasts: the longest red clearance (a group that flashed yellow clears). */
function entryMs(intersection: Intersection): number {
  return Math.max(0, ...intersection.groups.map((g) => g.redClearanceMs));
}

function phaseMs(intersection: Intersection, state: LampTestState): number {
  if (state.phase === "entry") return entryMs(intersection);
  const channel = state.channels[state.index] as LampChannel;
  const g = intersection.groups[channel.group] as SignalGroup;
  switch (state.phase) {
    case "lit": {
      // Aborted: a green or WALK still runs its minimum, a yellow its yellow time; red or DON'T WALK ends.
      const step = state.abort ? 0 : state.stepMs;
      if (isGo(channel.lamp)) return Math.max(step, g.minGoMs);
      if (channel.lamp === "yellow") return Math.max(step, g.clearanceMs);
      return step;
    }
    case "clearance":
      return g.clearanceMs;
    case "red-clearance":
      return g.redClearanceMs;
  }
}

/** The phases that follow a lit lamp: its clearance (green, WALK) and its red clearance (and yellow's). */
function phaseAfter(lamp: LampName, phase: Phase): Phase | null {
  if (phase === "lit") return isGo(lamp) ? "clearance" : lamp === "yellow" ? "red-clearance" : null;
  if (phase === "clearance") return "red-clearance";
  return null;
}

/**
 * The longest a lamp test can take from its first tick, `tickMs` the controller's tick: the entry, then
 * each channel's phases, each of which ends at the first tick after its time (so up to a tick more).
 */
export function lampTestBoundMs(intersection: Intersection, stepMs: number, tickMs: number): number {
  let total = entryMs(intersection) + tickMs;
  for (const channel of lampChannels(intersection)) {
    const g = intersection.groups[channel.group] as SignalGroup;
    if (isGo(channel.lamp))
      total += Math.max(stepMs, g.minGoMs) + g.clearanceMs + g.redClearanceMs + 3 * tickMs;
    else if (channel.lamp === "yellow")
      total += Math.max(stepMs, g.clearanceMs) + g.redClearanceMs + 2 * tickMs;
    else total += stepMs + tickMs;
  }
  return total;
}

export function startLampTest(
  intersection: Intersection,
  request: { readonly id: string; readonly by: string; readonly stepMs: number },
  wallMs: number,
): LampTestState {
  return {
    id: request.id,
    by: request.by,
    // The command checks the range; clamped here too, so that no step makes the test unbounded.
    stepMs: Math.min(Math.max(request.stepMs, MIN_LAMP_STEP_MS), MAX_LAMP_STEP_MS),
    channels: lampChannels(intersection),
    index: 0,
    phase: "entry",
    phaseStartMs: null,
    reading: NO_READING,
    results: [],
    dark: [],
    startedWallMs: wallMs,
    abort: null,
    end: null,
    endedWallMs: null,
    then: null,
  };
}

export function lampTestRunning(state: LampTestState | null): state is LampTestState {
  return state !== null && state.end === null;
}

/** Ends the test early: the lamp under test ends through its minimum and clearances first. */
export function abortLampTest(
  state: LampTestState,
  by: string,
  why: "operator" | "leave-flash" | "stop",
): LampTestState {
  if (state.end || state.abort) return state;
  return { ...state, abort: { kind: "aborted", by, why } };
}

/** Ends it at once: a fault latched, the intersection is in fault flash (nothing to clear: all-red flash). */
export function faultEndsLampTest(
  state: LampTestState,
  intersection: Intersection,
  message: string,
  wallMs: number,
): LampTestState {
  if (state.end) return state;
  return { ...closeLit(state, intersection), end: { kind: "fault", message }, endedWallMs: wallMs };
}

export interface LampTestStep {
  readonly state: LampTestState;
  /** What to write this tick; null: the test is over, show the sequencer's (flash) aspects. */
  readonly aspects: readonly Aspect[] | null;
}

/**
 * One tick: moves on at most one phase (every phase is shown for at least one tick, so the monitor sees
 * each interval), and returns the aspects to write.
 */
export function stepLampTest(
  state: LampTestState,
  intersection: Intersection,
  now: { readonly monoMs: number; readonly wallMs: number },
): LampTestStep {
  if (state.end) return { state, aspects: null };
  // A phase's first tick shows it, whatever its length: the entry's steady red after a flashing yellow
  // must reach the lamps even when no group has a red clearance (found by the lamp test's property test).
  if (state.phaseStartMs === null) {
    const started = { ...state, phaseStartMs: now.monoMs };
    return { state: started, aspects: lampTestAspects(started, intersection) };
  }
  let s = state;
  if (now.monoMs - (s.phaseStartMs as number) >= phaseMs(intersection, s))
    s = nextPhase(s, intersection, now);
  if (s.end) return { state: s, aspects: null };
  return { state: s, aspects: lampTestAspects(s, intersection) };
}

function nextPhase(
  state: LampTestState,
  intersection: Intersection,
  now: { readonly monoMs: number; readonly wallMs: number },
): LampTestState {
  const atNext = (s: LampTestState, phase: Phase, index = s.index): LampTestState => ({
    ...s,
    index,
    phase,
    phaseStartMs: now.monoMs,
  });
  if (state.phase === "entry") {
    if (state.abort || state.channels.length === 0) return finish(state, now.wallMs);
    return atNext({ ...state, reading: NO_READING }, "lit", 0);
  }
  const channel = state.channels[state.index] as LampChannel;
  const s = state.phase === "lit" ? closeLit(state, intersection) : state;
  const after = phaseAfter(channel.lamp, state.phase);
  if (after) return atNext(s, after);
  const index = state.index + 1;
  if (state.abort || index >= state.channels.length) return finish({ ...s, index }, now.wallMs);
  return atNext({ ...s, reading: NO_READING }, "lit", index);
}

function finish(state: LampTestState, wallMs: number): LampTestState {
  return { ...state, end: state.abort ?? { kind: "completed" }, endedWallMs: wallMs, phaseStartMs: null };
}

/** The lit phase of the channel under test is over: its verdict from the readings gathered. */
function closeLit(state: LampTestState, intersection: Intersection): LampTestState {
  if (state.phase !== "lit" || state.phaseStartMs === null) return state;
  const channel = state.channels[state.index] as LampChannel;
  const { readings, lit, others } = state.reading;
  const lasting = Object.keys(others).filter((name) => 2 * (others[name] as number) > readings);
  const verdict: LampVerdict =
    readings === 0
      ? "not-read"
      : lasting.length > 0
        ? "other-lamp-lit"
        : 2 * lit > readings
          ? "ok"
          : "no-current";
  const group = intersection.groups[channel.group]?.id ?? `#${channel.group}`;
  const result: LampResult = { group, lamp: channel.lamp, verdict, readings, lit, others: lasting };
  return {
    ...state,
    results: [...state.results, result],
    dark: verdict === "no-current" ? [...state.dark, channel] : state.dark,
  };
}

/** The aspects of a lamp-test picture: the group under test as its phase says, the others flashing red or dark. */
export function lampTestAspects(state: LampTestState, intersection: Intersection): Aspect[] {
  const channel = state.channels[state.index];
  return intersection.groups.map((g, i) => {
    if (state.phase === "entry") return g.kind === "vehicle" ? "red" : "dont-walk";
    if (!channel || channel.group !== i) return g.kind === "vehicle" ? "red-flash" : "dark";
    return testedAspect(channel.lamp, state.phase);
  });
}

function testedAspect(lamp: LampName, phase: Phase): Aspect {
  switch (lamp) {
    case "red":
      return "red";
    case "dontWalk":
      return "dont-walk";
    case "yellow":
      return phase === "lit" ? "yellow" : "red";
    case "green":
      return phase === "lit" ? "green" : phase === "clearance" ? "yellow" : "red";
    case "walk":
      return phase === "lit" ? "walk" : phase === "clearance" ? "ped-clearance" : "dont-walk";
  }
}

/**
 * A readback while the test runs: counted for the lamp under test (lit alone), against what was written
 * in the same tick. A lamp lit that nothing commanded is named — except another vehicle head's red,
 * which flashes, so that a readback taken across the flasher's edge is not mistaken for one.
 */
export function observeLampTest(
  state: LampTestState,
  intersection: Intersection,
  observed: readonly Lamps[],
  written: readonly Lamps[],
): LampTestState {
  if (state.end || state.phase !== "lit" || state.phaseStartMs === null) return state;
  const channel = state.channels[state.index] as LampChannel;
  const others: Record<string, number> = { ...state.reading.others };
  intersection.groups.forEach((g, i) => {
    const seen = observed[i];
    const want = written[i];
    if (!seen || !want) return;
    for (const lamp of lampsOf(g)) {
      const at = position(lamp);
      if (i === channel.group && lamp === channel.lamp) continue;
      if (i !== channel.group && g.kind === "vehicle" && lamp === "red") continue;
      if (seen[at] && !want[at]) {
        const name = `${g.id} ${LAMP_WORDS[lamp]}`;
        others[name] = (others[name] ?? 0) + 1;
      }
    }
  });
  const testedLit = observed[channel.group]?.[position(channel.lamp)] === true;
  return {
    ...state,
    reading: {
      readings: state.reading.readings + 1,
      lit: state.reading.lit + (testedLit ? 1 : 0),
      others,
    },
  };
}

/**
 * What the conflict monitor is shown of a readback during the test: the lamp under test, and the lamps
 * already found dark, as lit wherever they were commanded lit. Only ever adds a lit lamp.
 */
export function maskForMonitor(
  state: LampTestState,
  observed: readonly Lamps[],
  written: readonly Lamps[],
): readonly Lamps[] {
  if (state.end) return observed;
  const masked = [...state.dark];
  const current = state.channels[state.index];
  if (current && state.phase === "lit") masked.push(current);
  if (masked.length === 0) return observed;
  const out = [...observed];
  for (const channel of masked) {
    const at = position(channel.lamp);
    const seen = out[channel.group];
    if (seen && !seen[at] && written[channel.group]?.[at]) out[channel.group] = { ...seen, [at]: true };
  }
  return out;
}

/** The test's account, for the command's reply, the audit trail and the CLI. */
export interface LampTestReport {
  readonly id: string;
  readonly by: string;
  readonly stepMs: number;
  readonly state: "running" | "completed" | "aborted" | "fault";
  readonly channels: number;
  /** The lamp lit now, while running. */
  readonly current: string | null;
  readonly results: readonly LampResult[];
  /** How it ended, in words. */
  readonly message: string;
  readonly startedAt: string;
  readonly endedAt: string | null;
}

export function lampTestReport(state: LampTestState, intersection: Intersection): LampTestReport {
  const { results } = state;
  const current = state.end ? null : state.channels[state.index];
  const bad = results.filter((r) => r.verdict !== "ok");
  const tested = `${results.length} of ${state.channels.length} lamps tested`;
  const problems = bad.length === 0 ? "" : `, ${bad.length} not ok`;
  const message = !state.end
    ? `running: ${tested}${current ? `, ${describeChannel(intersection, current)} now` : ""}`
    : state.end.kind === "completed"
      ? `completed: ${tested}${problems || ", all ok"}; the intersection is back in scheduled flash`
      : state.end.kind === "aborted"
        ? `aborted by ${state.end.by} (${ABORT_WORDS[state.end.why]}): ${tested}${problems}`
        : `ended by a fault, the intersection is in fault flash: ${state.end.message} (${tested}${problems})`;
  return {
    id: state.id,
    by: state.by,
    stepMs: state.stepMs,
    state: state.end ? state.end.kind : "running",
    channels: state.channels.length,
    current: current ? describeChannel(intersection, current) : null,
    results,
    message,
    startedAt: new Date(state.startedWallMs).toISOString(),
    endedAt: state.endedWallMs === null ? null : new Date(state.endedWallMs).toISOString(),
  };
}

const ABORT_WORDS: Record<"operator" | "leave-flash" | "stop", string> = {
  operator: "lamp-test --abort",
  "leave-flash": "the intersection left flash",
  stop: "the gateway is stopping",
};
