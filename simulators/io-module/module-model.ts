import type { ModuleProfile } from "../../devices/io-map.js";

/**
 * The behaviour of a simulated Modbus I/O module, free of any transport: coils (relays), the lamp
 * feedback inputs, holding registers (the host watchdog), injected faults and a bounded history of the
 * outputs. Time is passed in (monotonic ms for the watchdog, wall ms for the history).
 */

export interface ModuleFaults {
  /** Do not answer at all. */
  noAnswer: boolean;
  /** Answer with a corrupted CRC (RTU) — over TCP, which has no CRC, the answer is dropped instead. */
  corruptCrc: boolean;
  /** Delay every answer by this much. */
  slowMs: number;
  /** Channels whose relay is stuck in its current position. */
  stuck: Set<number>;
  /** Channels whose lamp is dead: feedback off while the relay is on. */
  dark: Set<number>;
}

export interface HistoryEntry {
  /** Wall-clock ms when the outputs changed. */
  readonly t: number;
  /** Output channels, "1" on / "0" off, channel 0 first. */
  readonly outputs: string;
  /** Why they changed: a master write, or the watchdog falling to the safe state. */
  readonly cause: "write" | "watchdog" | "start";
}

/** The discrete inputs a module has (0 when its feedback is not read from inputs). */
export function inputChannels(profile: ModuleProfile): number {
  return profile.feedback.source === "discrete-inputs"
    ? profile.feedback.firstInput + profile.feedback.count
    : 0;
}

/** History beyond this is dropped oldest first, and counted. */
export const MAX_HISTORY = 200_000;

export class ModuleModel {
  readonly coils: boolean[];
  readonly holding = new Map<number, number>();
  readonly faults: ModuleFaults = {
    noAnswer: false,
    corruptCrc: false,
    slowMs: 0,
    stuck: new Set(),
    dark: new Set(),
  };
  readonly history: HistoryEntry[] = [];
  /**
   * Discrete inputs driven from outside (a detector: the live demo's SUMO loops), by input channel:
   * channels above the lamps' feedback, read as on or off instead of a lamp's current.
   */
  readonly detectorInputs = new Map<number, boolean>();
  historyDropped = 0;
  watchdogTrips = 0;
  private lastMasterWriteMono: number | null = null;
  private watchdogTripped = false;

  constructor(
    readonly profile: ModuleProfile,
    nowWallMs: number,
  ) {
    this.coils = Array.from({ length: profile.outputs }, () => false);
    this.record(nowWallMs, "start");
  }

  /** Watchdog timeout in ms, 0 when off or when the module has none. */
  get watchdogTimeoutMs(): number {
    const w = this.profile.watchdog;
    if (!w) return 0;
    return (this.holding.get(w.timeoutRegister) ?? 0) * w.timeoutUnitMs;
  }

  /** Coils as a master writes them: stuck relays keep their position. */
  writeCoils(first: number, values: readonly boolean[], nowMonoMs: number, nowWallMs: number): void {
    let changed = false;
    values.forEach((v, i) => {
      const channel = first - this.profile.firstCoil + i;
      if (channel < 0 || channel >= this.coils.length || this.faults.stuck.has(channel)) return;
      if (this.coils[channel] !== v) {
        this.coils[channel] = v;
        changed = true;
      }
    });
    this.lastMasterWriteMono = nowMonoMs;
    this.watchdogTripped = false;
    if (changed) this.record(nowWallMs, "write");
  }

  writeRegisters(first: number, values: readonly number[], nowMonoMs: number): void {
    values.forEach((v, i) => {
      this.holding.set(first + i, v & 0xffff);
    });
    this.lastMasterWriteMono = nowMonoMs;
  }

  readRegisters(first: number, count: number): number[] {
    return Array.from({ length: count }, (_, i) => this.holding.get(first + i) ?? 0);
  }

  readCoils(first: number, count: number): boolean[] {
    return Array.from({ length: count }, (_, i) => this.coils[first - this.profile.firstCoil + i] ?? false);
  }

  /** Lamp-current inputs: on when the relay is on and the lamp is alive; a detector input as it is set. */
  readInputs(first: number, count: number): boolean[] {
    return Array.from({ length: count }, (_, i) => {
      const channel = first + i;
      const detector = this.detectorInputs.get(channel);
      if (detector !== undefined) return detector;
      return (this.coils[channel] ?? false) && !this.faults.dark.has(channel);
    });
  }

  /** Sets a detector input (bounded by the module's inputs; a channel outside them is ignored). */
  setDetectorInput(channel: number, on: boolean): void {
    if (Number.isInteger(channel) && channel >= 0 && channel < inputChannels(this.profile))
      this.detectorInputs.set(channel, on);
  }

  /** Gives a detector input back to the lamp feedback (read as the lamp's current again). */
  releaseDetectorInput(channel: number): void {
    this.detectorInputs.delete(channel);
  }

  /** Advances the watchdog: no master write for its timeout sets the safe state. */
  tick(nowMonoMs: number, nowWallMs: number): void {
    const timeout = this.watchdogTimeoutMs;
    const w = this.profile.watchdog;
    if (!w || timeout === 0 || this.lastMasterWriteMono === null || this.watchdogTripped) return;
    if (nowMonoMs - this.lastMasterWriteMono < timeout) return;
    this.watchdogTripped = true;
    this.watchdogTrips++;
    const mask = this.readRegisters(w.safeStateRegister, Math.ceil(this.coils.length / 16));
    let changed = false;
    this.coils.forEach((was, n) => {
      if (this.faults.stuck.has(n)) return;
      const safe = (((mask[n >> 4] ?? 0) >> (n & 15)) & 1) === 1;
      if (safe !== was) {
        this.coils[n] = safe;
        changed = true;
      }
    });
    if (changed || this.history.at(-1)?.cause !== "watchdog") this.record(nowWallMs, "watchdog");
  }

  get inSafeState(): boolean {
    return this.watchdogTripped;
  }

  private record(t: number, cause: HistoryEntry["cause"]): void {
    if (this.history.length >= MAX_HISTORY) {
      this.history.shift();
      this.historyDropped++;
    }
    this.history.push({ t, outputs: this.coils.map((c) => (c ? "1" : "0")).join(""), cause });
  }
}
