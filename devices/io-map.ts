import type { Issue } from "../gateway/core/issues.js";
import { DARK, type Intersection, type LampColor, type Lamps } from "../gateway/core/model.js";

/**
 * How lamps map onto Modbus I/O module channels, and back. Pure: the output stage turns commanded
 * lamps into one coil image per module, and each module's feedback into observed lamps.
 */

export interface SerialSettings {
  readonly baudRate: number;
  readonly dataBits: 7 | 8;
  readonly parity: "none" | "even" | "odd";
  readonly stopBits: 1 | 2;
}

export type FeedbackSource =
  | { readonly source: "discrete-inputs"; readonly firstInput: number; readonly count: number }
  | { readonly source: "coils" }
  | { readonly source: "none" };

export interface WatchdogRegisters {
  readonly timeoutRegister: number;
  readonly timeoutUnitMs: number;
  readonly safeStateRegister: number;
}

/** A module's register map (a device profile file). */
export interface ModuleProfile {
  readonly id: string;
  readonly outputs: number;
  readonly firstCoil: number;
  readonly writeFunction: "fc15" | "fc05";
  readonly feedback: FeedbackSource;
  readonly unitId: number;
  readonly serial: SerialSettings;
  readonly watchdog: WatchdogRegisters | null;
}

export type Link =
  | { readonly kind: "tcp"; readonly host: string; readonly port: number }
  | { readonly kind: "serial"; readonly path: string; readonly serial: SerialSettings };

export interface DeviceSpec {
  readonly id: string;
  readonly profile: ModuleProfile;
  readonly link: Link;
  readonly unitId: number;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly faultWindowMs: number;
  readonly watchdogMs: number;
  /** Lamp → channel, by group id; lamp names as in the config (dontWalk / walk for pedestrians). */
  readonly channels: Readonly<Record<string, Readonly<Record<string, number>>>>;
}

export interface ChannelUse {
  readonly group: number;
  readonly lamp: LampColor;
}

/** One module of one intersection, ready to drive. */
export interface ModuleLayout {
  readonly deviceId: string;
  readonly profile: ModuleProfile;
  readonly link: Link;
  readonly unitId: number;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly faultWindowMs: number;
  readonly watchdogMs: number;
  /** channels[n]: the lamp output channel n drives, or null when unused. */
  readonly channels: readonly (ChannelUse | null)[];
  /** The outputs the module falls back to on its own when the master dies: vehicle red and DON'T WALK on. */
  readonly safeState: readonly boolean[];
}

/** Lamp names as written in the config, by head kind. Maps: a lamp name comes from the config file. */
const LAMP_NAMES: Readonly<Record<"vehicle" | "pedestrian", ReadonlyMap<string, LampColor>>> = {
  vehicle: new Map([
    ["red", "red"],
    ["yellow", "yellow"],
    ["green", "green"],
  ]),
  pedestrian: new Map([
    ["dontWalk", "red"],
    ["walk", "green"],
  ]),
};

/**
 * Checks the devices of an intersection against its groups: every lamp of every group is wired to
 * exactly one channel, channels exist on the module and are used once. `at` prefixes issue paths.
 */
export function layoutModules(
  intersection: Intersection,
  devices: readonly DeviceSpec[],
  at: readonly (string | number)[] = ["devices"],
): { layouts: ModuleLayout[]; issues: Issue[] } {
  const issues: Issue[] = [];
  const wired = new Map<string, string>();
  const groupIndex = new Map(intersection.groups.map((g, i) => [g.id, i]));
  const ids = new Set<string>();
  const layouts = devices.map((device, d) => {
    if (ids.has(device.id))
      issues.push({ path: [...at, d, "id"], message: `device id ${device.id} is used twice` });
    ids.add(device.id);
    const channels = wireChannels(intersection, device, groupIndex, wired, [...at, d], issues);
    const fb = device.profile.feedback;
    if (fb.source === "discrete-inputs") {
      const highest = channels.reduce((max, use, n) => (use ? n : max), -1);
      if (highest >= fb.count) {
        issues.push({
          path: [...at, d, "profile"],
          message: `profile ${device.profile.id} senses ${fb.count} inputs but channel ${highest} is wired`,
        });
      }
    }
    const safeState = channels.map((use) => use !== null && use.lamp === "red");
    return {
      deviceId: device.id,
      profile: device.profile,
      link: device.link,
      unitId: device.unitId,
      timeoutMs: device.timeoutMs,
      retries: device.retries,
      faultWindowMs: device.faultWindowMs,
      watchdogMs: device.watchdogMs,
      channels,
      safeState,
    };
  });
  if (devices.length > 0) {
    intersection.groups.forEach((g) => {
      for (const [name, lamp] of LAMP_NAMES[g.kind]) {
        if (!wired.has(`${g.id}.${lamp}`)) {
          issues.push({ path: at, message: `${g.id} ${name} is not wired to any device channel` });
        }
      }
    });
  }
  return { layouts, issues };
}

/**
 * One device's channels: which group's lamp each drives. Every lamp of a known group on a channel the
 * module has, each channel used once, each lamp wired once across the devices (`wired`).
 */
function wireChannels(
  intersection: Intersection,
  device: DeviceSpec,
  groupIndex: ReadonlyMap<string, number>,
  wired: Map<string, string>,
  where0: readonly (string | number)[],
  issues: Issue[],
): (ChannelUse | null)[] {
  const channels: (ChannelUse | null)[] = Array.from({ length: device.profile.outputs }, () => null);
  for (const [groupId, lamps] of Object.entries(device.channels)) {
    const gi = groupIndex.get(groupId);
    const group = gi === undefined ? undefined : intersection.groups[gi];
    if (gi === undefined || !group) {
      issues.push({
        path: [...where0, "channels", groupId],
        message: `device ${device.id} wires unknown group ${groupId}`,
      });
      continue;
    }
    const names = LAMP_NAMES[group.kind];
    for (const [lampName, channel] of Object.entries(lamps)) {
      const lamp = names.get(lampName);
      const where = [...where0, "channels", groupId, lampName];
      if (!lamp) {
        issues.push({
          path: where,
          message: `group ${groupId} is a ${group.kind} head: its lamps are ${[...names.keys()].join(", ")}, not ${lampName}`,
        });
      } else if (channel >= device.profile.outputs) {
        issues.push({
          path: where,
          message: `channel ${channel} does not exist on ${device.id} (profile ${device.profile.id} has channels 0–${device.profile.outputs - 1})`,
        });
      } else if (channels[channel]) {
        const other = channels[channel];
        issues.push({
          path: where,
          message: `channel ${channel} of ${device.id} already drives ${intersection.groups[other?.group ?? 0]?.id} ${other?.lamp}`,
        });
      } else {
        channels[channel] = { group: gi, lamp };
        const key = `${groupId}.${lamp}`;
        if (wired.has(key))
          issues.push({
            path: where,
            message: `${groupId} ${lampName} is wired twice (also on ${wired.get(key)})`,
          });
        wired.set(key, device.id);
      }
    }
  }
  return channels;
}

/** Where a detector's input is: detector index (in Intersection.detectors), device, input channel. */
export interface DetectorWiring {
  readonly detector: number;
  readonly deviceId: string;
  /**
   * The input channel, 0-based like the lamp channels: index `input` of the module's feedback read
   * (FC02 of `count` inputs from `firstInput`), that is discrete input `firstInput + input`.
   */
  readonly input: number;
}

/** A detector as written in the intersection file: its id, the device and the input channel it is on. */
export interface DetectorInput {
  readonly id: string;
  readonly device: string;
  readonly input: number;
}

/**
 * Checks the detectors' inputs against the modules and wires them: a known device whose profile reads
 * discrete inputs, a channel within them, not a lamp's feedback (channel n wired to a lamp is read as
 * that lamp's current), not another detector's. `unloaded`: devices of the file whose layout is
 * unknown (their profile failed): a detector on one is not checked further. `at` prefixes issue paths.
 */
export function wireDetectors(
  intersection: Intersection,
  detectors: readonly DetectorInput[],
  layouts: readonly ModuleLayout[],
  at: readonly (string | number)[] = ["detectors"],
  unloaded: readonly string[] = [],
): { wiring: DetectorWiring[]; issues: Issue[] } {
  const issues: Issue[] = [];
  const wiring: DetectorWiring[] = [];
  const byId = new Map(layouts.map((layout) => [layout.deviceId, layout]));
  const taken = new Map<string, string>();
  // Every input some detector asks for, so that a suggested free input is free of all of them.
  const asked = new Set(detectors.map((detector) => `${detector.device}:${detector.input}`));
  const free = (layout: ModuleLayout) => freeInputs(layout, asked);
  detectors.forEach((detector, d) => {
    const where = [...at, d];
    const layout = byId.get(detector.device);
    if (!layout) {
      if (!unloaded.includes(detector.device)) {
        const known = [...byId.keys(), ...unloaded];
        issues.push({
          path: [...where, "device"],
          message: `detector ${detector.id} is on unknown device ${detector.device} (${known.length > 0 ? `devices: ${known.join(", ")}` : "the file has no devices: add its I/O module under devices"})`,
        });
      }
      return;
    }
    const fb = layout.profile.feedback;
    if (fb.source !== "discrete-inputs") {
      issues.push({
        path: [...where, "device"],
        message: `detector ${detector.id}: device ${layout.deviceId} (profile ${layout.profile.id}) has no discrete inputs (its feedback is ${fb.source}): put the detector on a module whose profile reads discrete inputs (feedback: { source: discrete-inputs, … })`,
      });
      return;
    }
    const input = detector.input;
    const lamp = layout.channels[input];
    if (input >= fb.count) {
      issues.push({
        path: [...where, "input"],
        message: `input ${input} does not exist on ${layout.deviceId} (profile ${layout.profile.id} reads ${fb.count} discrete inputs, channels 0–${fb.count - 1})${free(layout)}`,
      });
    } else if (lamp) {
      issues.push({
        path: [...where, "input"],
        message: `input ${input} of ${layout.deviceId} is the lamp feedback of ${intersection.groups[lamp.group]?.id} ${lampName(intersection, lamp)} (output channel ${input} drives that lamp, and input ${input} reads its current)${free(layout)}`,
      });
    } else {
      const key = `${layout.deviceId}:${input}`;
      const other = taken.get(key);
      if (other !== undefined) {
        issues.push({
          path: [...where, "input"],
          message: `input ${input} of ${layout.deviceId} is already detector ${other}'s: one input is one detector${free(layout)}`,
        });
      } else {
        taken.set(key, detector.id);
        wiring.push({ detector: d, deviceId: layout.deviceId, input });
      }
    }
  });
  return { wiring, issues };
}

/** ": free inputs are …" for a module, or nothing when it has none left. */
function freeInputs(layout: ModuleLayout, asked: ReadonlySet<string>): string {
  const fb = layout.profile.feedback;
  if (fb.source !== "discrete-inputs") return "";
  const free: number[] = [];
  for (let n = 0; n < fb.count; n++)
    if (!layout.channels[n] && !asked.has(`${layout.deviceId}:${n}`)) free.push(n);
  if (free.length === 0) return `: ${layout.deviceId} has no free input left`;
  return `: use a free input of ${layout.deviceId} (${ranges(free)})`;
}

/** 3, 4, 5, 9 → "3–5, 9". */
function ranges(numbers: readonly number[]): string {
  const parts: string[] = [];
  let start = numbers[0] as number;
  let previous = start;
  for (const n of [...numbers.slice(1), Number.NaN]) {
    if (n === previous + 1) {
      previous = n;
      continue;
    }
    parts.push(start === previous ? String(start) : `${start}–${previous}`);
    start = n;
    previous = n;
  }
  return parts.join(", ");
}

/** A lamp's name as the config writes it (dontWalk / walk for pedestrian heads). */
function lampName(intersection: Intersection, use: ChannelUse): string {
  const kind = intersection.groups[use.group]?.kind ?? "vehicle";
  for (const [name, lamp] of LAMP_NAMES[kind]) if (lamp === use.lamp) return name;
  return use.lamp;
}

/**
 * Each detector's input (by detector index) from the modules' feedback reads: `feedback[m]` is module
 * m's sensed inputs as `observedLamps` takes them; null where the detector's module gave no feedback.
 */
export function detectorInputs(
  detectorCount: number,
  wiring: readonly DetectorWiring[],
  layouts: readonly ModuleLayout[],
  feedback: readonly (readonly boolean[] | null)[],
): (boolean | null)[] {
  const inputs: (boolean | null)[] = Array.from({ length: detectorCount }, () => null);
  const module = new Map(layouts.map((layout, m) => [layout.deviceId, m]));
  for (const w of wiring) {
    const m = module.get(w.deviceId);
    const sensed = m === undefined ? null : feedback[m];
    inputs[w.detector] = sensed ? (sensed[w.input] ?? null) : null;
  }
  return inputs;
}

/** The coil image of one module for these lamps (one FC15 writes it all). */
export function coilsFor(layout: ModuleLayout, lamps: readonly Lamps[]): boolean[] {
  return layout.channels.map((use) => (use ? (lamps[use.group] as Lamps)[use.lamp] : false));
}

/**
 * The lamps observed through every module's feedback, merged per group. `feedback[m]` is module m's
 * sensed channels (inputs, or coils read back), or null when that module has no feedback.
 */
export function observedLamps(
  intersection: Intersection,
  layouts: readonly ModuleLayout[],
  feedback: readonly (readonly boolean[] | null)[],
): Lamps[] {
  const lamps: { red: boolean; yellow: boolean; green: boolean }[] = intersection.groups.map(() => ({
    ...DARK,
  }));
  layouts.forEach((layout, m) => {
    const sensed = feedback[m];
    if (!sensed) return;
    layout.channels.forEach((use, n) => {
      if (use && sensed[n])
        (lamps[use.group] as { red: boolean; yellow: boolean; green: boolean })[use.lamp] = true;
    });
  });
  return lamps;
}

/** The safe-state bit mask as holding registers: bit n of register n / 16 is channel n. */
export function safeStateRegisters(layout: ModuleLayout): number[] {
  const registers = Array.from({ length: Math.ceil(layout.profile.outputs / 16) }, () => 0);
  layout.safeState.forEach((on, n) => {
    if (on) registers[n >> 4] = (registers[n >> 4] as number) | (1 << (n & 15));
  });
  return registers;
}
