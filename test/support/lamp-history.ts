import { FIXTURE } from "./fixture-intersection.js";

/**
 * What the simulated I/O module (`greenwave sim io-module`) recorded, read over its control API, and
 * decoded into the lamps of the test intersections (test/support/fixture-intersection.ts and
 * corridor-fixture.ts share the channel layout): the tests prove what the lamps did from this, not
 * from the gateway's own account.
 */

export interface HistoryEntry {
  /** The simulator's wall clock when the outputs changed. */
  readonly t: number;
  /** Output channels, "1" on, channel 0 first. */
  readonly outputs: string;
  readonly cause: string;
}

export interface ModuleState {
  readonly coils: string;
  readonly watchdog: { readonly timeoutMs: number; readonly inSafeState: boolean; readonly trips: number };
  readonly historyLength: number;
  readonly historyDropped: number;
}

export async function readHistory(control: string): Promise<HistoryEntry[]> {
  const res = await fetch(`${control}/history`);
  return ((await res.json()) as { entries: HistoryEntry[] }).entries;
}

export async function readModuleState(control: string): Promise<ModuleState> {
  return (await (await fetch(`${control}/state`)).json()) as ModuleState;
}

/** The module's safe state for this layout: every vehicle red and every DON'T WALK on, nothing else. */
export const SAFE_STATE_COILS = "1001001010";

export type GroupId = keyof typeof FIXTURE.groups;
export const GROUPS = Object.keys(FIXTURE.groups) as GroupId[];

/** Lamps per group: vehicle "G" / "Y" / "R" / "-" (dark) or a mix "R+Y"; pedestrian "W" / "D" / "-" / "W+D". */
export function decode(outputs: string): Record<GroupId, string> {
  const on = (ch: number) => outputs[ch] === "1";
  const out = {} as Record<GroupId, string>;
  for (const id of GROUPS) {
    const g = FIXTURE.groups[id];
    const ch = g.channels;
    if (g.kind === "vehicle") {
      const lit = [on(ch[0]) && "R", on(ch[1]) && "Y", on(ch[2] as number) && "G"].filter(Boolean);
      out[id] = lit.length === 1 ? (lit[0] as string) : lit.length === 0 ? "-" : lit.join("+");
    } else {
      out[id] = on(ch[1]) ? (on(ch[0]) ? "W+D" : "W") : on(ch[0]) ? "D" : "-";
    }
  }
  return out;
}

/** One lamp state of one group, shown from `from` until `to` (null: still shown when the history ends). */
export interface Run {
  readonly lamp: string;
  readonly from: number;
  readonly to: number | null;
}

/** The successive lamp states of a group: consecutive entries showing the same lamp are one run. */
export function runsOf(entries: readonly HistoryEntry[], group: GroupId): Run[] {
  const runs: { lamp: string; from: number; to: number | null }[] = [];
  for (const entry of entries) {
    const lamp = decode(entry.outputs)[group];
    const last = runs.at(-1);
    if (last && last.lamp === lamp) continue;
    if (last) last.to = entry.t;
    runs.push({ lamp, from: entry.t, to: null });
  }
  return runs;
}

/** The entry in force at `t` (the last change at or before it). */
export function entryAt(entries: readonly HistoryEntry[], t: number): HistoryEntry | undefined {
  let found: HistoryEntry | undefined;
  for (const entry of entries) {
    if (entry.t > t) break;
    found = entry;
  }
  return found;
}
