import type { Approach, Leg, TurningShares } from "../../../gateway/config/traffic-schema.js";
import { TO_LEG, TURNS } from "../../../gateway/config/traffic-schema.js";
import type { CorridorGeometry } from "./geometry.js";

/**
 * Origin–destination flows from a demand (pure): each entry's vehicles split at every approach they
 * reach by its turning shares, so a flow is one route with its vehicles per hour. Ids encode origin
 * and destination: `W` and `E` are the corridor's west and east ends, `oak-N` and `oak-S` oak's north
 * and south legs; a flow is `origin~destination` (`W~E`: corridor-long eastbound), and SUMO names its
 * vehicles `W~E.0`, `W~E.1`, …
 */

export interface Flow {
  readonly id: string;
  readonly origin: string;
  readonly destination: string;
  readonly edges: readonly string[];
  readonly vehiclesPerHour: number;
}

export interface DemandInput {
  readonly mainStreet: { readonly eastbound: number; readonly westbound: number };
  readonly sideStreets: ReadonlyMap<string, { readonly northbound: number; readonly southbound: number }>;
  readonly turning: ReadonlyMap<string, Readonly<Record<Approach, TurningShares>>>;
}

export const WEST_TOKEN = "W";
export const EAST_TOKEN = "E";
export const FLOW_SEPARATOR = "~";
/** Flows thinner than this (vehicles per hour) are left out: a route nobody takes in a day is noise in the route file. */
export const MIN_FLOW_PER_HOUR = 0.05;

const legToken = (junction: string, leg: "north" | "south") => `${junction}-${leg === "north" ? "N" : "S"}`;

export function corridorFlows(
  junctionIds: readonly string[],
  geometry: CorridorGeometry,
  demand: DemandInput,
): Flow[] {
  const totals = new Map<string, { origin: string; destination: string; edges: string[]; rate: number }>();
  const add = (origin: string, destination: string, edges: string[], rate: number) => {
    const id = `${origin}${FLOW_SEPARATOR}${destination}`;
    const known = totals.get(id);
    if (known) known.rate += rate;
    else totals.set(id, { origin, destination, edges, rate });
  };
  // Walks a stream arriving at junction k on an approach; bounded: every step moves one junction on.
  const walk = (origin: string, k: number, approach: Approach, edges: string[], rate: number) => {
    const id = junctionIds[k] as string;
    const shares = demand.turning.get(id)?.[approach];
    if (shares === undefined) throw new Error(`demand has no turning shares for ${id} ${approach}`);
    for (const turn of TURNS) {
      const share = rate * shares[turn];
      if (share <= 0) continue;
      const leg: Leg = TO_LEG[approach][turn];
      const next = [...edges, geometry.outEdge(id, leg)];
      if (leg === "north" || leg === "south") add(origin, legToken(id, leg), next, share);
      else if (leg === "east") {
        if (k + 1 < junctionIds.length) walk(origin, k + 1, "eastbound", next, share);
        else add(origin, EAST_TOKEN, next, share);
      } else if (k > 0) walk(origin, k - 1, "westbound", next, share);
      else add(origin, WEST_TOKEN, next, share);
    }
  };
  const first = junctionIds[0] as string;
  const last = junctionIds[junctionIds.length - 1] as string;
  if (demand.mainStreet.eastbound > 0)
    walk(WEST_TOKEN, 0, "eastbound", [geometry.inEdge(first, "eastbound")], demand.mainStreet.eastbound);
  if (demand.mainStreet.westbound > 0)
    walk(
      EAST_TOKEN,
      junctionIds.length - 1,
      "westbound",
      [geometry.inEdge(last, "westbound")],
      demand.mainStreet.westbound,
    );
  junctionIds.forEach((id, k) => {
    const side = demand.sideStreets.get(id) ?? { northbound: 0, southbound: 0 };
    if (side.northbound > 0)
      walk(legToken(id, "south"), k, "northbound", [geometry.inEdge(id, "northbound")], side.northbound);
    if (side.southbound > 0)
      walk(legToken(id, "north"), k, "southbound", [geometry.inEdge(id, "southbound")], side.southbound);
  });
  return [...totals]
    .filter(([, f]) => f.rate >= MIN_FLOW_PER_HOUR)
    .map(([id, f]) => ({
      id,
      origin: f.origin,
      destination: f.destination,
      edges: f.edges,
      vehiclesPerHour: f.rate,
    }));
}

/** The direction of a vehicle by its id: corridor-long eastbound (`W~E.n`), westbound (`E~W.n`), or neither. */
export function directionOfVehicle(vehicleId: string): "eastbound" | "westbound" | null {
  const dot = vehicleId.lastIndexOf(".");
  const flow = dot < 0 ? vehicleId : vehicleId.slice(0, dot);
  if (flow === `${WEST_TOKEN}${FLOW_SEPARATOR}${EAST_TOKEN}`) return "eastbound";
  if (flow === `${EAST_TOKEN}${FLOW_SEPARATOR}${WEST_TOKEN}`) return "westbound";
  return null;
}
