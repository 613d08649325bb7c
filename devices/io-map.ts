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
