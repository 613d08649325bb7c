import { type Aspect, type Intersection, isActive } from "../gateway/core/model.js";

/**
 * An independent check of the field's safety rules over a stream of commanded aspects, written
 * separately from the conflict monitor so that the two cannot share a mistake.
 */
export class SafetyOracle {
  private readonly current: ({ aspect: Aspect; since: number } | undefined)[] = [];
  private readonly inactiveSince: number[];

  constructor(private readonly x: Intersection) {
    this.inactiveSince = x.groups.map(() => Number.NEGATIVE_INFINITY);
  }

  /** Returns a description of the first rule broken at this instant, or null. */
  observe(aspects: readonly Aspect[], t: number): string | null {
    const { groups, permissive } = this.x;
    for (let a = 0; a < groups.length; a++) {
      for (let b = a + 1; b < groups.length; b++) {
        if (isActive(aspects[a] as Aspect) && isActive(aspects[b] as Aspect) && !permissive[a]?.[b]) {
          return `t=${t}: conflicting ${groups[a]?.id}=${aspects[a]} and ${groups[b]?.id}=${aspects[b]}`;
        }
      }
    }
    const state = this.current;
    for (let g = 0; g < groups.length; g++) {
      const group = groups[g];
      const next = aspects[g] as Aspect;
      const prev = state[g];
      if (!group) return "missing group";
      if (!prev) {
        state[g] = { aspect: next, since: t };
        continue;
      }
      if (prev.aspect === next) continue;
      const shown = t - prev.since;
      const follows: Partial<Record<Aspect, Aspect>> = {
        green: "yellow",
        walk: "ped-clearance",
        yellow: "red",
        "ped-clearance": "dont-walk",
      };
      const required = follows[prev.aspect];
      if (required && next !== required) return `t=${t}: ${group.id} ${prev.aspect} -> ${next}`;
      if ((prev.aspect === "green" || prev.aspect === "walk") && shown < group.minGoMs) {
        return `t=${t}: ${group.id} ${prev.aspect} lasted ${shown} ms < minimum ${group.minGoMs} ms`;
      }
      if ((prev.aspect === "yellow" || prev.aspect === "ped-clearance") && shown < group.clearanceMs) {
        return `t=${t}: ${group.id} ${prev.aspect} lasted ${shown} ms < ${group.clearanceMs} ms`;
      }
      if (isActive(prev.aspect) && !isActive(next)) this.inactiveSince[g] = t;
      if (!isActive(prev.aspect) && isActive(next)) {
        for (let h = 0; h < groups.length; h++) {
          if (h === g || permissive[g]?.[h]) continue;
          const redFor = t - (this.inactiveSince[h] as number);
          const other = groups[h];
          if (other && redFor < other.redClearanceMs) {
            return `t=${t}: ${group.id} started ${next} ${redFor} ms after ${other.id} ended (red clearance ${other.redClearanceMs} ms)`;
          }
        }
      }
      state[g] = { aspect: next, since: t };
    }
    return null;
  }
}
