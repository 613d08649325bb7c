import {
  type Approach,
  FROM_LEG,
  type Leg,
  TO_LEG,
  type TrafficLayout,
  type Turn,
  TURNS,
} from "../../../gateway/config/traffic-schema.js";

/**
 * The corridor's road network as plain data (pure): a straight east–west main street through the
 * intersections at their cumulative distances, an entry/exit stretch at each end, and a north and a
 * south leg at every intersection. Ids (docs/traffic-network.md): the junction of an intersection is
 * its id (and so is its traffic light); `oak.eb` is oak's eastbound approach (from the west), `oak.wb`,
 * `oak.nb` (from the south) and `oak.sb` its others; `oak.nb-out` and `oak.sb-out` leave by the side
 * street; `east.exit` and `west.exit` leave the corridor at its ends. Every edge has a sidewalk as
 * lane 0: vehicle lane v is SUMO lane v + 1.
 */

/** The main street's entry and exit stretches, each end (long enough for an advance loop and for entering at speed). */
export const END_STRETCH_M = 300;
/** Each side-street leg. */
export const SIDE_LEG_M = 200;
/** The side street's speed limit. */
export const SIDE_STREET_SPEED_KMH = 40;
/** Sidewalk width; every edge has one (lane 0), for the crossings' walking areas. */
export const SIDEWALK_M = 2;
/** Two intersections closer than this would leave no approach to speak of. */
export const MIN_SPACING_M = 60;

export const APPROACH_ABBREVIATION: Record<Approach, string> = {
  eastbound: "eb",
  westbound: "wb",
  northbound: "nb",
  southbound: "sb",
};

export interface JunctionInput {
  readonly id: string;
  /** From the previous intersection (0 for the first). */
  readonly distanceM: number;
  readonly layout: TrafficLayout;
}

export interface EdgeSpec {
  readonly id: string;
  readonly from: string;
  readonly to: string;
  /** Vehicle lanes (the sidewalk comes on top). */
  readonly vehicleLanes: number;
  /** Of them, the through lanes (the rest, on the left, turn left only). */
  readonly throughLanes: number;
  readonly speedMs: number;
  readonly priority: number;
  /** The approach this edge is, at which junction; null for an edge leaving the corridor. */
  readonly approachOf: { readonly junction: string; readonly approach: Approach } | null;
}

export interface ConnectionSpec {
  readonly from: string;
  readonly to: string;
  /** Vehicle lane indices (0: rightmost). */
  readonly fromLane: number;
  readonly toLane: number;
  readonly junction: string;
  readonly approach: Approach;
  readonly turn: Turn;
}

export interface NodeSpec {
  readonly id: string;
  readonly x: number;
  readonly y: number;
  readonly trafficLight: boolean;
}

export interface CrossingSpec {
  readonly junction: string;
  readonly leg: Leg;
  readonly edges: readonly [string, string];
}

export interface CorridorGeometry {
  readonly nodes: readonly NodeSpec[];
  readonly edges: readonly EdgeSpec[];
  readonly connections: readonly ConnectionSpec[];
  readonly crossings: readonly CrossingSpec[];
  /** The edge a vehicle takes at each junction leaving by each leg. */
  readonly outEdge: (junction: string, leg: Leg) => string;
  /** The approach edge of each junction and approach. */
  readonly inEdge: (junction: string, approach: Approach) => string;
  /** From the west end to the east end along the main street. */
  readonly corridorLengthM: number;
}

export class NetworkGeometryError extends Error {
  override readonly name = "NetworkGeometryError";
}

export const WEST_END = "west.end";
export const EAST_END = "east.end";
export const WEST_EXIT = "west.exit";
export const EAST_EXIT = "east.exit";

/** The corridor's network (pure): junctions in corridor order, west to east. */
export function corridorGeometry(
  junctions: readonly JunctionInput[],
  mainSpeedKmh: number,
): CorridorGeometry {
  if (junctions.length === 0)
    throw new NetworkGeometryError("a corridor without intersections has no network");
  const seen = new Set<string>();
  junctions.forEach((j, k) => {
    if (seen.has(j.id)) throw new NetworkGeometryError(`intersection ${j.id} is in the corridor twice`);
    seen.add(j.id);
    if (k > 0 && j.distanceM < MIN_SPACING_M)
      throw new NetworkGeometryError(
        `intersection ${j.id} is ${j.distanceM} m from the previous one: the network needs at least ${MIN_SPACING_M} m between intersections`,
      );
  });
  const mainMs = mainSpeedKmh / 3.6;
  const sideMs = Math.min(SIDE_STREET_SPEED_KMH, mainSpeedKmh) / 3.6;
  const nodes: NodeSpec[] = [{ id: WEST_END, x: 0, y: 0, trafficLight: false }];
  let x = END_STRETCH_M;
  junctions.forEach((j, k) => {
    if (k > 0) x += j.distanceM;
    nodes.push({ id: j.id, x, y: 0, trafficLight: true });
    nodes.push({ id: `${j.id}.north`, x, y: SIDE_LEG_M, trafficLight: false });
    nodes.push({ id: `${j.id}.south`, x, y: -SIDE_LEG_M, trafficLight: false });
  });
  const eastX = x + END_STRETCH_M;
  nodes.push({ id: EAST_END, x: eastX, y: 0, trafficLight: false });

  const byId = new Map(junctions.map((j, k) => [j.id, k]));
  const at = (k: number) => junctions[k] as JunctionInput;
  const inEdge = (junction: string, approach: Approach) => `${junction}.${APPROACH_ABBREVIATION[approach]}`;
  const outEdge = (junction: string, leg: Leg): string => {
    const k = byId.get(junction) as number;
    if (leg === "north") return `${junction}.nb-out`;
    if (leg === "south") return `${junction}.sb-out`;
    if (leg === "east") return k + 1 < junctions.length ? inEdge(at(k + 1).id, "eastbound") : EAST_EXIT;
    return k > 0 ? inEdge(at(k - 1).id, "westbound") : WEST_EXIT;
  };

  const edges: EdgeSpec[] = [];
  const approachEdge = (j: JunctionInput, approach: Approach, from: string) => {
    const lanes = j.layout.lanes[approach];
    const main = approach === "eastbound" || approach === "westbound";
    edges.push({
      id: inEdge(j.id, approach),
      from,
      to: j.id,
      vehicleLanes: lanes.through + lanes.left,
      throughLanes: lanes.through,
      speedMs: main ? mainMs : sideMs,
      priority: main ? 3 : 2,
      approachOf: { junction: j.id, approach },
    });
  };
  const exitEdge = (id: string, from: string, to: string, lanes: number, main: boolean) =>
    edges.push({
      id,
      from,
      to,
      vehicleLanes: lanes,
      throughLanes: lanes,
      speedMs: main ? mainMs : sideMs,
      priority: main ? 3 : 2,
      approachOf: null,
    });
  junctions.forEach((j, k) => {
    approachEdge(j, "eastbound", k === 0 ? WEST_END : at(k - 1).id);
    approachEdge(j, "westbound", k + 1 < junctions.length ? at(k + 1).id : EAST_END);
    approachEdge(j, "northbound", `${j.id}.south`);
    approachEdge(j, "southbound", `${j.id}.north`);
    exitEdge(`${j.id}.nb-out`, j.id, `${j.id}.north`, j.layout.lanes.northbound.through, false);
    exitEdge(`${j.id}.sb-out`, j.id, `${j.id}.south`, j.layout.lanes.southbound.through, false);
  });
  const first = at(0);
  const last = at(junctions.length - 1);
  exitEdge(WEST_EXIT, first.id, WEST_END, first.layout.lanes.westbound.through, true);
  exitEdge(EAST_EXIT, last.id, EAST_END, last.layout.lanes.eastbound.through, true);
  const edgeById = new Map(edges.map((e) => [e.id, e]));

  const connections: ConnectionSpec[] = [];
  const crossings: CrossingSpec[] = [];
  for (const j of junctions) {
    for (const approach of ["eastbound", "westbound", "northbound", "southbound"] as const) {
      const { through, left } = j.layout.lanes[approach];
      const from = inEdge(j.id, approach);
      for (const turn of TURNS) {
        const to = outEdge(j.id, TO_LEG[approach][turn]);
        const target = edgeById.get(to) as EdgeSpec;
        const lanesTo = target.throughLanes;
        const add = (fromLane: number, toLane: number) =>
          connections.push({ from, to, fromLane, toLane, junction: j.id, approach, turn });
        if (turn === "right") add(0, 0);
        else if (turn === "through") for (let v = 0; v < through; v++) add(v, Math.min(v, lanesTo - 1));
        else if (left === 0) add(through - 1, lanesTo - 1);
        else for (let k = 0; k < left; k++) add(through + k, Math.max(0, lanesTo - left + k));
      }
    }
    for (const [movement] of j.layout.movements) {
      if (!movement.startsWith("crossing-")) continue;
      const leg = movement.slice("crossing-".length) as Leg;
      const approach = (Object.keys(FROM_LEG) as Approach[]).find((a) => FROM_LEG[a] === leg) as Approach;
      crossings.push({ junction: j.id, leg, edges: [inEdge(j.id, approach), outEdge(j.id, leg)] });
    }
  }
  return { nodes, edges, connections, crossings, outEdge, inEdge, corridorLengthM: eastX };
}

/** The plain-XML files netconvert reads (docs/web/docs/Networks/PlainXML.md): nodes, edges, connections with crossings. */
export function plainXml(geometry: CorridorGeometry): { nodes: string; edges: string; connections: string } {
  const nodes = geometry.nodes.map(
    (n) =>
      `  <node id="${n.id}" x="${n.x.toFixed(2)}" y="${n.y.toFixed(2)}" type="${n.trafficLight ? "traffic_light" : "priority"}"${n.trafficLight ? ` tl="${n.id}" tlType="static"` : ""}/>`,
  );
  const edges = geometry.edges.map(
    (e) =>
      `  <edge id="${e.id}" from="${e.from}" to="${e.to}" priority="${e.priority}" numLanes="${e.vehicleLanes + 1}" speed="${e.speedMs.toFixed(2)}" sidewalkWidth="${SIDEWALK_M}"/>`,
  );
  const connections = [
    ...geometry.connections.map(
      (c) =>
        `  <connection from="${c.from}" to="${c.to}" fromLane="${c.fromLane + 1}" toLane="${c.toLane + 1}"/>`,
    ),
    ...geometry.crossings.map(
      (c) => `  <crossing node="${c.junction}" edges="${c.edges.join(" ")}" priority="true"/>`,
    ),
  ];
  const file = (root: string, lines: string[]) =>
    `<?xml version="1.0" encoding="UTF-8"?>\n<${root}>\n${lines.join("\n")}\n</${root}>\n`;
  return {
    nodes: file("nodes", nodes),
    edges: file("edges", edges),
    connections: file("connections", connections),
  };
}
