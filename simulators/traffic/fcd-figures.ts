/**
 * What a traffic run measures, from SUMO's own records: the floating-car data (every vehicle's
 * position and speed, sampled) and the trip summaries. Pure: text and intervals in, figures out.
 *
 * - **Stops downstream of the first intersection** (per corridor-long trip): the times the vehicle's
 *   speed fell below 0.1 m/s (SUMO's own threshold for `waitingCount`) after it passed the first
 *   intersection of its direction; a new stop counts only once the vehicle has moved on at more than
 *   1 m/s (creeping up a queue is one stop).
 * - **Arrivals on green** (the Purdue coordination diagram's measure): the instant a vehicle would have
 *   reached the stop line at the design speed, from when it passed a point `ADVANCE_M` upstream (as an
 *   advance detector sees it), falls in the through group's green at that intersection.
 */

/** Where a vehicle "arrives" for arrivals on green, upstream of the junction's centre. */
export const ADVANCE_M = 120;
/** Speeds below this are a stop (SUMO's waitingCount threshold). */
export const STOPPED_MPS = 0.1;
/** A stopped vehicle must move faster than this before its next stop counts. */
export const MOVING_AGAIN_MPS = 1;

export interface FcdSample {
  readonly timeS: number;
  readonly x: number;
  readonly speed: number;
}

/**
 * Reads SUMO's fcd-export XML (one `<vehicle …/>` per line inside `<timestep time="…">`) into samples
 * per vehicle, keeping only the vehicles `keep` accepts. Streaming-friendly: line by line.
 */
export class FcdReader {
  private timeS = 0;
  readonly samples = new Map<string, FcdSample[]>();
  /** Samples kept at most (a bound on memory for a long run): past it, new vehicles are not tracked, counted. */
  static readonly MAX_SAMPLES = 5_000_000;
  private count = 0;
  untracked = 0;

  constructor(private readonly keep: (vehicleId: string) => boolean) {}

  line(text: string): void {
    const step = /<timestep time="([\d.]+)"/.exec(text);
    if (step) {
      this.timeS = Number(step[1]);
      return;
    }
    if (!text.includes("<vehicle ")) return;
    const id = attribute(text, "id");
    if (id === null || !this.keep(id)) return;
    const x = Number(attribute(text, "x"));
    const speed = Number(attribute(text, "speed"));
    if (!Number.isFinite(x) || !Number.isFinite(speed)) return;
    let list = this.samples.get(id);
    if (!list) {
      if (this.count >= FcdReader.MAX_SAMPLES) {
        this.untracked++;
        return;
      }
      list = [];
      this.samples.set(id, list);
    }
    list.push({ timeS: this.timeS, x, speed });
    this.count++;
  }
}

export function attribute(text: string, name: string): string | null {
  const match = new RegExp(`\\s${name}="([^"]*)"`).exec(text);
  return match ? (match[1] as string) : null;
}

/** Stops after `fromX` in the direction of travel (`sign` +1: x grows, eastbound; −1 westbound). */
export function stopsAfter(samples: readonly FcdSample[], fromX: number, sign: 1 | -1): number {
  let stops = 0;
  let stopped = false;
  for (const s of samples) {
    if ((s.x - fromX) * sign <= 0) continue;
    if (!stopped && s.speed < STOPPED_MPS) {
      stops++;
      stopped = true;
    } else if (stopped && s.speed > MOVING_AGAIN_MPS) stopped = false;
  }
  return stops;
}

/**
 * When the vehicle passed `pointX` going `sign`-wards (linear between samples), seconds; null if it
 * never did in the samples.
 */
export function passedAt(samples: readonly FcdSample[], pointX: number, sign: 1 | -1): number | null {
  for (let k = 1; k < samples.length; k++) {
    const a = samples[k - 1] as FcdSample;
    const b = samples[k] as FcdSample;
    const da = (a.x - pointX) * sign;
    const db = (b.x - pointX) * sign;
    if (da < 0 && db >= 0) return a.timeS + ((b.timeS - a.timeS) * -da) / (db - da);
  }
  return null;
}

export interface Interval {
  readonly fromS: number;
  readonly toS: number;
}

export function within(intervals: readonly Interval[], t: number): boolean {
  return intervals.some((i) => t >= i.fromS && t < i.toS);
}

export interface TripSummary {
  readonly id: string;
  readonly departS: number;
  readonly durationS: number;
  readonly waitingCount: number;
  readonly timeLossS: number;
}

/** Reads SUMO's tripinfo XML (one `<tripinfo …/>` per vehicle that arrived). */
export function readTripinfo(text: string): TripSummary[] {
  const trips: TripSummary[] = [];
  for (const match of text.matchAll(/<tripinfo\s[^>]*>/g)) {
    const tag = match[0];
    const id = attribute(tag, "id");
    const departS = Number(attribute(tag, "depart"));
    const durationS = Number(attribute(tag, "duration"));
    const waitingCount = Number(attribute(tag, "waitingCount"));
    const timeLossS = Number(attribute(tag, "timeLoss"));
    if (id === null || ![departS, durationS, waitingCount, timeLossS].every(Number.isFinite)) continue;
    trips.push({ id, departS, durationS, waitingCount, timeLossS });
  }
  return trips;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}

/**
 * The side-street leg a vehicle entered by, from its id (its flow's `origin~destination`,
 * docs/traffic-network.md): `oak-N~E.3` entered from oak's north leg (it drives southbound), `oak-S~…`
 * from its south leg (northbound); null for a vehicle that entered at a corridor end.
 */
export function sideStreetEntry(
  vehicleId: string,
): { readonly intersectionId: string; readonly approach: "northbound" | "southbound" } | null {
  const tilde = vehicleId.indexOf("~");
  if (tilde < 0) return null;
  const match = /^(.+)-([NS])$/.exec(vehicleId.slice(0, tilde));
  if (!match) return null;
  return { intersectionId: match[1] as string, approach: match[2] === "N" ? "southbound" : "northbound" };
}

/**
 * Reads SUMO's fcd-export XML (as FcdReader does, line by line) for the time each vehicle spent stopped
 * (speed below `STOPPED_MPS`) on one edge: the side-street approach it entered by, say, where it
 * waited for that signal. `edgeOf` names the edge for a vehicle (null: not tracked); every sample
 * stands for `periodS` (the export's period).
 */
export class StoppedOnEdgeReader {
  /** Seconds stopped, by vehicle; a tracked vehicle that never stopped there is absent. */
  readonly stoppedS = new Map<string, number>();

  constructor(
    private readonly edgeOf: (vehicleId: string) => string | null,
    private readonly periodS: number,
  ) {}

  line(text: string): void {
    if (!text.includes("<vehicle ")) return;
    const id = attribute(text, "id");
    if (id === null) return;
    const edge = this.edgeOf(id);
    if (edge === null) return;
    const lane = attribute(text, "lane");
    if (lane === null || !lane.startsWith(`${edge}_`)) return;
    const speed = Number(attribute(text, "speed"));
    if (!(speed < STOPPED_MPS)) return;
    this.stoppedS.set(id, (this.stoppedS.get(id) ?? 0) + this.periodS);
  }
}

/** The median of a list (the mean of the middle two for an even count); 0 for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
