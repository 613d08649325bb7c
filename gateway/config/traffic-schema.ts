import { z } from "zod";
import type { Issue } from "../core/issues.js";
import { identifier } from "./identifier.js";

/**
 * What an intersection looks like to traffic simulation (simulators/traffic/network, docs/traffic-network.md):
 * a four-leg junction of the main street (east–west, the corridor's order is west to east) and a side
 * street (north–south), its lanes per approach, and which signal group serves which movement. Pure: the
 * schema of an intersection file's `traffic:` block, its defaults, and its checks.
 */

export const APPROACHES = ["eastbound", "westbound", "northbound", "southbound"] as const;
export type Approach = (typeof APPROACHES)[number];
export const TURNS = ["left", "through", "right"] as const;
export type Turn = (typeof TURNS)[number];
/** The legs of the junction; a pedestrian crossing is named after the leg it crosses. */
export const LEGS = ["north", "east", "south", "west"] as const;
export type Leg = (typeof LEGS)[number];

export const VEHICLE_MOVEMENTS: readonly string[] = APPROACHES.flatMap((a) => TURNS.map((t) => `${a}-${t}`));
export const CROSSING_MOVEMENTS: readonly string[] = LEGS.map((leg) => `crossing-${leg}`);

export const isMainStreet = (approach: Approach) => approach === "eastbound" || approach === "westbound";

const vehicleMovement = z.enum(
  VEHICLE_MOVEMENTS as [string, ...string[]],
  "must be a vehicle movement: eastbound|westbound|northbound|southbound, then -left, -through or -right",
);

const laneCounts = z.strictObject({
  /** Lanes that go straight on; the rightmost also turns right (and, without a left-turn lane, the leftmost turns left). */
  through: z.number().int().min(1, "must be at least 1 lane").max(4, "must be at most 4 lanes"),
  /** Dedicated left-turn lanes, left of the through lanes (0: the leftmost through lane turns left). */
  left: z.number().int().min(0, "must be at least 0 lanes").max(2, "must be at most 2 lanes").default(0),
});
export type LaneCounts = z.output<typeof laneCounts>;

export const trafficGroupSchema = z.strictObject({
  /** Movements that go with priority on this group's green (SUMO `G`): nothing they conflict with may be green with them. */
  protected: z.array(vehicleMovement).max(12).default([]),
  /** Movements that go on this group's green but yield (SUMO `g`): permissive lefts, right turns across a walking crossing. */
  permissive: z.array(vehicleMovement).max(12).default([]),
  /** Pedestrian groups: the legs whose crossing they serve. */
  crossings: z.array(z.enum(LEGS, "must be a leg: north, east, south or west")).max(4).default([]),
});

/** An intersection file's `traffic:` block: absent, or any part absent, the defaults below. */
export const trafficSchema = z.strictObject({
  /** Lanes per approach. Default: 2 through lanes on the main street, plus 1 left-turn lane where a group serves the main street's lefts alone (ML); 1 on the side street, plus 1 left-turn lane with SL. */
  lanes: z.partialRecord(z.enum(APPROACHES, "must be an approach: eastbound, westbound, northbound or southbound"), laneCounts).optional(),
  /** Which group serves which movement. Default: by the groups' names (docs/traffic-network.md). Every vehicle movement must be served by exactly one group. */
  groups: z.record(identifier, trafficGroupSchema).optional(),
});
export type TrafficFile = z.output<typeof trafficSchema>;

export interface MovementRole {
  /** "eastbound-left", …, or "crossing-north", … */
  readonly movement: string;
  /** Index into the intersection's groups. */
  readonly group: number;
  readonly kind: "protected" | "permissive" | "pedestrian";
}

/** One intersection's traffic layout, checked: every vehicle movement served once, crossings where pedestrian groups are. */
export interface TrafficLayout {
  readonly lanes: Readonly<Record<Approach, LaneCounts>>;
  /** By movement name; crossings only where a group serves them. */
  readonly movements: ReadonlyMap<string, MovementRole>;
}

interface GroupInfo {
  readonly id: string;
  readonly kind: "vehicle" | "pedestrian";
}

/** The mapping used when an intersection file has no `traffic.groups`: by the groups' conventional names. */
export function defaultTrafficGroups(groups: readonly GroupInfo[]): Record<string, z.output<typeof trafficGroupSchema>> {
  const has = (id: string) => groups.some((g) => g.id === id);
  const out: Record<string, z.output<typeof trafficGroupSchema>> = {};
  const entry = (p: string[], q: string[], c: Leg[] = []) => ({ protected: p, permissive: q, crossings: c });
  if (has("M"))
    out.M = entry(
      ["eastbound-through", "westbound-through"],
      ["eastbound-right", "westbound-right", ...(has("ML") ? [] : ["eastbound-left", "westbound-left"])],
    );
  if (has("ML")) out.ML = entry(["eastbound-left", "westbound-left"], []);
  if (has("S"))
    out.S = entry(
      ["northbound-through", "southbound-through"],
      ["northbound-right", "southbound-right", ...(has("SL") ? [] : ["northbound-left", "southbound-left"])],
    );
  if (has("SL")) out.SL = entry(["northbound-left", "southbound-left"], []);
  if (has("PS")) out.PS = entry([], [], ["north", "south"]);
  if (has("PM")) out.PM = entry([], [], ["west", "east"]);
  return out;
}

/** Default lanes: 2 through on the main street, 1 on the side street, a left-turn lane where lefts have their own group. */
export function defaultLanes(groups: readonly GroupInfo[]): Record<Approach, LaneCounts> {
  const has = (id: string) => groups.some((g) => g.id === id);
  const main = { through: 2, left: has("ML") ? 1 : 0 };
  const side = { through: 1, left: has("SL") ? 1 : 0 };
  return { eastbound: main, westbound: main, northbound: side, southbound: side };
}

/**
 * The circle around a four-leg junction, clockwise from the north, for right-hand traffic: each leg
 * has its inbound side then its outbound side. A vehicle movement is a chord from its approach's
 * inbound point to its exit leg's outbound point; two movements conflict when their chords cross or
 * they leave by the same leg. A crossing conflicts with every movement entering or leaving its leg.
 */
const IN_POINT: Record<Leg, number> = { north: 0, east: 2, south: 4, west: 6 };
const OUT_POINT: Record<Leg, number> = { north: 1, east: 3, south: 5, west: 7 };
/** The leg an approach comes from. */
export const FROM_LEG: Record<Approach, Leg> = { eastbound: "west", westbound: "east", northbound: "south", southbound: "north" };
/** The leg a vehicle leaves by, per approach and turn (right-hand traffic). */
export const TO_LEG: Record<Approach, Record<Turn, Leg>> = {
  eastbound: { left: "north", through: "east", right: "south" },
  westbound: { left: "south", through: "west", right: "north" },
  northbound: { left: "west", through: "north", right: "east" },
  southbound: { left: "east", through: "south", right: "west" },
};

type Movement =
  | { readonly kind: "vehicle"; readonly approach: Approach; readonly turn: Turn }
  | { readonly kind: "crossing"; readonly leg: Leg };

export function parseMovement(name: string): Movement {
  if (name.startsWith("crossing-")) return { kind: "crossing", leg: name.slice("crossing-".length) as Leg };
  const [approach, turn] = name.split("-") as [Approach, Turn];
  return { kind: "vehicle", approach, turn };
}

/** Whether two movements of one junction cross or merge (geometry only, whatever the signals). */
export function movementsConflict(a: string, b: string): boolean {
  const ma = parseMovement(a);
  const mb = parseMovement(b);
  if (ma.kind === "crossing" && mb.kind === "crossing") return false;
  if (ma.kind === "crossing" || mb.kind === "crossing") {
    const [c, v] = ma.kind === "crossing" ? [ma, mb as Extract<Movement, { kind: "vehicle" }>] : [mb as Extract<Movement, { kind: "crossing" }>, ma];
    return FROM_LEG[v.approach] === c.leg || TO_LEG[v.approach][v.turn] === c.leg;
  }
  if (ma.approach === mb.approach) return false;
  const a0 = IN_POINT[FROM_LEG[ma.approach]];
  const a1 = OUT_POINT[TO_LEG[ma.approach][ma.turn]];
  const b0 = IN_POINT[FROM_LEG[mb.approach]];
  const b1 = OUT_POINT[TO_LEG[mb.approach][mb.turn]];
  if (a1 === b1) return true;
  const inside = (p: number) => (a0 < a1 ? p > a0 && p < a1 : p > a0 || p < a1);
  return inside(b0) !== inside(b1);
}

/**
 * Which of two conflicting movements yields when both may go (SUMO's right of way, as netconvert
 * builds it with the main street the priority road): a vehicle yields to a crossing, the side street
 * to the main street, a left turn to the opposing through and right traffic, a right turn to the
 * through traffic it merges into. Null: neither by these rules (both must not go together).
 */
export function yieldingMovement(a: string, b: string): string | null {
  const ma = parseMovement(a);
  const mb = parseMovement(b);
  if (ma.kind === "crossing") return mb.kind === "vehicle" ? b : null;
  if (mb.kind === "crossing") return a;
  const mainA = isMainStreet(ma.approach);
  const mainB = isMainStreet(mb.approach);
  if (mainA !== mainB) return mainA ? b : a;
  if (ma.turn === "left" && mb.turn !== "left") return a;
  if (mb.turn === "left" && ma.turn !== "left") return b;
  if (ma.turn === "right" && mb.turn === "through") return a;
  if (mb.turn === "right" && ma.turn === "through") return b;
  return null;
}

/**
 * An intersection's traffic layout from its file: the `traffic:` block or the defaults, checked against
 * its groups and its permissive matrix. Issues' paths point into the intersection file.
 */
export function trafficLayout(
  traffic: TrafficFile | undefined,
  groups: readonly GroupInfo[],
  permissive: readonly (readonly boolean[])[],
): { layout: TrafficLayout; issues: Issue[] } {
  const issues: Issue[] = [];
  const lanes = { ...defaultLanes(groups), ...(traffic?.lanes ?? {}) } as Record<Approach, LaneCounts>;
  const explicit = traffic?.groups !== undefined;
  const mapping = traffic?.groups ?? defaultTrafficGroups(groups);
  const where = (groupId: string, field?: string): (string | number)[] =>
    explicit ? ["traffic", "groups", groupId, ...(field ? [field] : [])] : ["groups"];
  const movements = new Map<string, MovementRole & { field: (string | number)[] }>();
  for (const [groupId, served] of Object.entries(mapping)) {
    const g = groups.findIndex((x) => x.id === groupId);
    const group = groups[g];
    if (group === undefined) {
      issues.push({ path: where(groupId), message: `traffic names unknown group ${groupId} (groups: ${groups.map((x) => x.id).join(", ")})` });
      continue;
    }
    const lists: [string, "protected" | "permissive" | "pedestrian", readonly string[]][] = [
      ["protected", "protected", served.protected],
      ["permissive", "permissive", served.permissive],
      ["crossings", "pedestrian", served.crossings.map((leg) => `crossing-${leg}`)],
    ];
    for (const [field, kind, names] of lists) {
      if (names.length === 0) continue;
      if ((kind === "pedestrian") !== (group.kind === "pedestrian")) {
        issues.push({
          path: where(groupId, field),
          message:
            group.kind === "pedestrian"
              ? `${groupId} is a pedestrian group: it serves crossings (crossings: [north, south]), not vehicle movements`
              : `${groupId} is a vehicle group: it serves vehicle movements (protected/permissive), not crossings`,
        });
        continue;
      }
      names.forEach((movement, k) => {
        const other = movements.get(movement);
        if (other !== undefined) {
          const otherId = groups[other.group]?.id ?? "?";
          issues.push({
            path: explicit ? [...where(groupId, field), k] : ["groups"],
            message:
              otherId === groupId
                ? `movement ${movement} is listed twice for group ${groupId}`
                : `movement ${movement} is served by two groups, ${otherId} and ${groupId}: a movement has one signal; list it under one group`,
          });
          return;
        }
        movements.set(movement, { movement, group: g, kind, field: explicit ? [...where(groupId, field), k] : ["groups"] });
      });
    }
  }
  // A group that does not exist leaves its movements unserved: that one issue says enough.
  const unknownGroup = issues.some((i) => i.message.startsWith("traffic names unknown group"));
  for (const movement of VEHICLE_MOVEMENTS) {
    if (!movements.has(movement) && !unknownGroup)
      issues.push({
        path: explicit ? ["traffic", "groups"] : ["groups"],
        message: explicit
          ? `movement ${movement} is served by no group: list it under the group whose green lets it go`
          : `no traffic.groups block, and movement ${movement} is served by no group by default (the defaults go by the names M, ML, S, SL, PS, PM): write a traffic block`,
      });
  }
  issues.push(...concurrencyIssues([...movements.values()], groups, permissive));
  const layout: TrafficLayout = {
    lanes,
    movements: new Map([...movements].map(([name, { movement, group, kind }]) => [name, { movement, group, kind }])),
  };
  return { layout, issues };
}

/**
 * Two conflicting movements that may show green together (one group, or two permissive groups): one
 * of them must be permissive, and it must be the one SUMO makes yield. Otherwise the simulation would
 * let both go (SUMO does not stop a `G` for anything).
 */
function concurrencyIssues(
  roles: readonly (MovementRole & { field: (string | number)[] })[],
  groups: readonly GroupInfo[],
  permissive: readonly (readonly boolean[])[],
): Issue[] {
  const issues: Issue[] = [];
  // Per movement that should yield and does not: the movements it conflicts with, and why they meet.
  const mustYield = new Map<(typeof roles)[number], string[]>();
  for (let i = 0; i < roles.length; i++) {
    for (let j = i + 1; j < roles.length; j++) {
      const a = roles[i] as (typeof roles)[number];
      const b = roles[j] as (typeof roles)[number];
      const together = a.group === b.group || permissive[a.group]?.[b.group] === true;
      if (!together || !movementsConflict(a.movement, b.movement)) continue;
      const ga = groups[a.group]?.id;
      const gb = groups[b.group]?.id;
      const how = a.group === b.group ? `both served by ${ga}` : `served by ${ga} and ${gb}, which are permissive`;
      const yielding = yieldingMovement(a.movement, b.movement);
      const yielder = yielding === a.movement ? a : yielding === b.movement ? b : null;
      if (yielder === null) {
        issues.push({
          path: b.field,
          message: `movements ${a.movement} and ${b.movement} conflict, neither yields to the other, and they may be green together (${how}): serve them by groups that are not permissive`,
        });
      } else if (yielder.kind !== "permissive") {
        const other = yielder === a ? b : a;
        mustYield.set(yielder, [...(mustYield.get(yielder) ?? []), `${other.movement} (${how})`]);
      }
    }
  }
  for (const [yielder, others] of mustYield)
    issues.push({
      path: yielder.field,
      message: `movement ${yielder.movement} conflicts with ${others.join(", ")}, which may be green with it: it must yield, so list it as permissive, or serve it by a group that is not permissive with theirs`,
    });
  return issues;
}

const vehiclesPerHour = z
  .number()
  .min(0, "must be at least 0 vehicles per hour: a flow cannot be negative")
  .max(4000, "must be at most 4000 vehicles per hour");
const share = z.number().min(0, "must be at least 0").max(1, "must be at most 1");

export const turningSchema = z.strictObject({ left: share, through: share, right: share });
export type TurningShares = z.output<typeof turningSchema>;

/** Shares used for an approach a demand file gives none for. */
export const DEFAULT_TURNING: Readonly<Record<"main" | "side", TurningShares>> = {
  main: { left: 0.1, through: 0.8, right: 0.1 },
  side: { left: 0.25, through: 0.5, right: 0.25 },
};

/** A `kind: demand` file: vehicles per hour per entry and turning shares per approach, for one corridor. */
export const demandFileSchema = z.strictObject({
  kind: z.literal("demand"),
  id: identifier,
  corridor: identifier,
  description: z.string().max(500).optional(),
  /** Vehicles per hour entering the main street at the corridor's ends: eastbound at its first (west) end, westbound at its last. */
  mainStreet: z.strictObject({ eastbound: vehiclesPerHour, westbound: vehiclesPerHour }),
  /** Per intersection, vehicles per hour entering from the side street: northbound from the south leg, southbound from the north leg (0 if absent). */
  sideStreets: z
    .record(
      identifier,
      z.strictObject({ northbound: vehiclesPerHour.default(0), southbound: vehiclesPerHour.default(0) }),
    )
    .default({}),
  /** Per intersection and approach, the shares of vehicles turning left, going through and turning right: they sum to 1. Absent: DEFAULT_TURNING. */
  turning: z
    .record(
      identifier,
      z.partialRecord(
        z.enum(APPROACHES, "must be an approach: eastbound, westbound, northbound or southbound"),
        turningSchema,
      ),
    )
    .default({}),
});
export type DemandFile = z.output<typeof demandFileSchema>;
