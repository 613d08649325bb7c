import type { Aspect, Intersection, Lamps } from "../../gateway/core/model.js";

/**
 * Aspects read back from lamps alone, as a person at the roadside (or SUMO) sees them: the live demo
 * gets each module's relay outputs, not the controller's aspects, and a flashing lamp is on, then off.
 * A lamp that has changed at least twice within one and a half flash periods is flashing; a lamp that
 * changed once (a steady yellow that just began) is not. Pure: the state is the caller's.
 */

type LampName = keyof Lamps;
const LAMP_NAMES: readonly LampName[] = ["red", "yellow", "green"];

export interface LampWatch {
  /** Per group, per lamp: whether it is on, and when it last changed (ms; the newest two). */
  readonly groups: readonly Readonly<
    Record<LampName, { readonly on: boolean; readonly changes: readonly number[] }>
  >[];
}

export function startLampWatch(intersection: Intersection): LampWatch {
  const off = { on: false, changes: [] as number[] };
  return { groups: intersection.groups.map(() => ({ red: off, yellow: off, green: off })) };
}

export function readAspects(
  intersection: Intersection,
  watch: LampWatch,
  lamps: readonly Lamps[],
  nowMs: number,
): { watch: LampWatch; aspects: Aspect[] } {
  const windowMs = intersection.flashPeriodMs * 1.5;
  const groups = intersection.groups.map((_, i) => {
    const before = watch.groups[i];
    const now = lamps[i] ?? { red: false, yellow: false, green: false };
    const next = {} as Record<LampName, { on: boolean; changes: number[] }>;
    for (const name of LAMP_NAMES) {
      const was = before?.[name] ?? { on: false, changes: [] };
      const changes = was.on === now[name] ? [...was.changes] : [...was.changes, nowMs].slice(-2);
      next[name] = { on: now[name], changes };
    }
    return next;
  });
  const flashing = (g: (typeof groups)[number], name: LampName) =>
    g[name].changes.length === 2 && nowMs - (g[name].changes[0] as number) <= windowMs;
  const aspects = intersection.groups.map((group, i): Aspect => {
    const g = groups[i] as (typeof groups)[number];
    if (group.kind === "pedestrian") {
      if (g.green.on) return "walk";
      if (flashing(g, "red")) return "ped-clearance";
      return g.red.on ? "dont-walk" : "dark";
    }
    if (g.green.on) return "green";
    if (flashing(g, "yellow")) return "yellow-flash";
    if (g.yellow.on) return "yellow";
    if (flashing(g, "red")) return "red-flash";
    return g.red.on ? "red" : "dark";
  });
  return { watch: { groups }, aspects };
}
