import type { Aspect } from "../../../gateway/core/model.js";

/** What each link index of one intersection's SUMO traffic light is, in link-index order. */
export interface LinkRole {
  /** Index into Intersection.groups: the group whose aspect this link shows. */
  readonly group: number;
  /** protected: goes with priority (SUMO `G`); permissive: yields (`g`); pedestrian: a crossing. */
  readonly kind: "protected" | "permissive" | "pedestrian";
  /** "eastbound-left", "northbound-through", …, "crossing-north", … */
  readonly movement: string;
}

export interface TrafficLightMap {
  readonly intersectionId: string;
  /** The SUMO traffic light's id (the junction's: the intersection's id). */
  readonly tlsId: string;
  /** links[i] is link index i of the traffic light: the RYG state string has one character per link. */
  readonly links: readonly LinkRole[];
}

/**
 * SUMO's signal character for one link showing an aspect (docs/traffic-network.md, "Flash"):
 * a vehicle link's green is `G` (protected) or `g` (permissive: yields to its foes); flashing yellow is
 * `o` (off, blinking: yield), flashing red `s` (stop, then go when no foe with priority comes), a dark
 * vehicle head `s` too (a dark signal is an all-way stop). A crossing is `G` on WALK, `r` on flashing
 * and steady DON'T WALK, `O` when dark (off, no signal: pedestrians keep the right of way a crosswalk
 * gives them; the vehicles, on `o` or `s`, yield to them).
 */
export function linkChar(kind: LinkRole["kind"], aspect: Aspect): string {
  if (kind === "pedestrian") {
    switch (aspect) {
      case "walk":
      case "green":
        return "G";
      case "dark":
        return "O";
      case "yellow-flash":
        return "o";
      default:
        return "r"; // dont-walk, ped-clearance (no one starts; those on the crossing finish), red, yellow, red-flash
    }
  }
  switch (aspect) {
    case "green":
    case "walk":
      return kind === "protected" ? "G" : "g";
    case "yellow":
      return "y";
    case "yellow-flash":
      return "o";
    case "red-flash":
    case "dark":
      return "s";
    default:
      return "r"; // red, dont-walk, ped-clearance
  }
}

/**
 * The RYG state string of one traffic light from the aspects the controller shows, indexed like
 * Intersection.groups (pure). A link whose group has no aspect shows red.
 */
export function signalState(map: TrafficLightMap, aspects: readonly Aspect[]): string {
  let state = "";
  for (const link of map.links) {
    const aspect = aspects[link.group];
    state += aspect === undefined ? "r" : linkChar(link.kind, aspect);
  }
  return state;
}
