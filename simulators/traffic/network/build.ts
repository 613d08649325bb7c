import { sumoEnvironment } from "../traci/index.js";
import { ConfigError } from "../../../gateway/config/errors.js";
import { spawn } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { LoadedDemand } from "../../../gateway/config/load-demand.js";
import type { LoadedCorridor, LoadedIntersection } from "../../../gateway/config/load.js";
import {
  type Approach,
  APPROACHES,
  FROM_LEG,
  type Leg,
  LEGS,
  TO_LEG,
  type TrafficLayout,
  trafficLayout,
  type Turn,
  TURNS,
} from "../../../gateway/config/traffic-schema.js";
import { corridorFlows, directionOfVehicle, type Flow } from "./demand-flows.js";
import {
  APPROACH_ABBREVIATION,
  type CorridorGeometry,
  corridorGeometry,
  type JunctionInput,
  plainXml,
} from "./geometry.js";
import { type NetFile, parseNetFile } from "./net-file.js";
import { mulberry32 } from "../mulberry32.js";
import type { LinkRole, TrafficLightMap } from "./signal-state.js";

/** A loop detector the run reads: an advance loop upstream of a main-street stop line (arrivals on green), or a stop-bar loop (issue 18). */
export interface LoopDetector {
  readonly id: string;
  readonly intersectionId: string;
  readonly approach: Approach;
  readonly purpose: "advance" | "stop-bar";
  readonly distanceToStopLineM: number;
  /** The group whose green serves the lane (its through movement where it has one). */
  readonly group: number;
}

export interface CorridorNetwork {
  readonly dir: string;
  readonly netFile: string;
  readonly routesFile: string;
  readonly additionalFile: string;
  /** Corridor order (west to east). */
  readonly lights: readonly TrafficLightMap[];
  readonly loops: readonly LoopDetector[];
  /** "eastbound" for a vehicle entering at the corridor's first end and leaving at its last, "westbound" the reverse, null otherwise. */
  directionOf(vehicleId: string): "eastbound" | "westbound" | null;
  /** From the west end to the east end along the main street (entry and exit stretches included). */
  readonly corridorLengthM: number;
}

/** netconvert failed, or what it wrote does not match the mapping: says which and why. */
export class NetworkBuildError extends Error {
  override readonly name = "NetworkBuildError";
}

/** How far upstream of the stop line an advance loop lies (less on a shorter approach). */
export const ADVANCE_LOOP_M = 120;
/** A stop-bar loop: a vehicle waiting at the line stands on it. */
export const STOP_BAR_LOOP_M = 3;
/** The junctions' curb radius (docs/traffic-network.md). */
export const JUNCTION_RADIUS_M = 10;
/** netconvert's time limit: the example corridor takes well under a second. */
export const NETCONVERT_TIMEOUT_MS = 60_000;
/** Kept of netconvert's output, for an error message. */
const MAX_TOOL_OUTPUT_CHARS = 20_000;

/** The vehicle type: a passenger car; its speed comes from each lane's limit (the main street's is the corridor's progression speed). */
export const VEHICLE_TYPE_ID = "car";

/**
 * Builds the corridor's SUMO network, detectors and routes in `dir` from greenwave's config: plain XML,
 * converted by `netconvert` (which must be on PATH), then read back so that every traffic light's link
 * indices are known exactly (docs/traffic-network.md).
 */
export async function buildCorridorNetwork(
  corridor: LoadedCorridor,
  intersections: readonly LoadedIntersection[],
  demand: LoadedDemand,
  dir: string,
  options: { seed?: number } = {},
): Promise<CorridorNetwork> {
  const byId = new Map(intersections.map((i) => [i.raw.id, i]));
  const members = corridor.raw.intersections.map((entry) => {
    const loaded = byId.get(entry.id);
    if (loaded === undefined)
      throw new NetworkBuildError(`intersection ${entry.id} of corridor ${corridor.raw.id} was not given`);
    return { entry, loaded, layout: layoutOf(loaded) };
  });
  const junctions: JunctionInput[] = members.map((m) => ({
    id: m.entry.id,
    distanceM: m.entry.distanceMeters,
    layout: m.layout,
  }));
  const geometry = corridorGeometry(junctions, corridor.raw.progressionSpeedKmh ?? 50);
  await mkdir(dir, { recursive: true });
  const xml = plainXml(geometry);
  const files = {
    nodes: join(dir, "corridor.nod.xml"),
    edges: join(dir, "corridor.edg.xml"),
    connections: join(dir, "corridor.con.xml"),
    net: join(dir, "corridor.net.xml"),
    routes: join(dir, "corridor.rou.xml"),
    additional: join(dir, "corridor.add.xml"),
  };
  await writeFile(files.nodes, xml.nodes);
  await writeFile(files.edges, xml.edges);
  await writeFile(files.connections, xml.connections);
  await runNetconvert(
    [
      "--node-files",
      files.nodes,
      "--edge-files",
      files.edges,
      "--connection-files",
      files.connections,
      "--no-turnarounds",
      "true",
      "--offset.disable-normalization",
      "true",
      "--tls.default-type",
      "static",
      // A 10 m curb radius (netconvert's default is 4 m): on a one-lane side street, opposing permissive
      // left turns otherwise pass so close in the junction that SUMO's collision check sees them touch.
      "--default.junctions.radius",
      String(JUNCTION_RADIUS_M),
      "--output-file",
      files.net,
    ],
    dir,
  );
  const net = parseNetFile(await readFile(files.net, "utf8"));
  const lights = members.map((m) => lightMap(m.entry.id, m.layout, m.loaded, geometry, net));
  const loops = members.flatMap((m) => loopsOf(m.entry.id, m.layout, geometry, net));
  const ids = members.map((m) => m.entry.id);
  const flows = corridorFlows(ids, geometry, demand);
  await writeFile(files.additional, additionalXml(loops, geometry, net));
  await writeFile(files.routes, routesXml(flows, corridor.raw.progressionSpeedKmh ?? 50, options.seed ?? 1));
  return {
    dir,
    netFile: files.net,
    routesFile: files.routes,
    additionalFile: files.additional,
    lights,
    loops,
    directionOf: directionOfVehicle,
    corridorLengthM: geometry.corridorLengthM,
  };
}

function layoutOf(loaded: LoadedIntersection): TrafficLayout {
  const { layout, issues } = trafficLayout(
    loaded.raw.traffic,
    loaded.raw.groups,
    loaded.intersection.permissive,
  );
  // With a `traffic:` block loadIntersection has checked it already; without one the defaults (by the
  // groups' names) must fit here, and what is missing is said at the file's lines.
  if (issues.length > 0) throw new ConfigError(loaded.yaml.locate(issues));
  return layout;
}

function runNetconvert(args: readonly string[], cwd: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    let output = "";
    const child = spawn("netconvert", args, {
      cwd,
      stdio: ["ignore", "pipe", "pipe"],
      env: sumoEnvironment(),
    });
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString("utf8")).slice(-MAX_TOOL_OUTPUT_CHARS);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    const timer = setTimeout(() => child.kill("SIGKILL"), NETCONVERT_TIMEOUT_MS);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(new NetworkBuildError(`cannot run netconvert (apt-get install sumo): ${error.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise();
      else
        reject(
          new NetworkBuildError(
            `netconvert failed (${signal ? `killed by ${signal} after ${NETCONVERT_TIMEOUT_MS} ms` : `exit ${code}`}):\n${output.trim()}`,
          ),
        );
    });
  });
}

const TURN_OF_LEG = (approach: Approach, leg: Leg): Turn | undefined =>
  TURNS.find((t) => TO_LEG[approach][t] === leg);

/**
 * The traffic light's link indices as netconvert numbered them, each with the movement and group it
 * belongs to; then SUMO's right of way checked against the mapping: a permissive link that may be
 * green with a conflicting one must yield to it in the net, or the two could collide.
 */
function lightMap(
  id: string,
  layout: TrafficLayout,
  loaded: LoadedIntersection,
  geometry: CorridorGeometry,
  net: NetFile,
): TrafficLightMap {
  const count = net.stateLengths.get(id);
  if (count === undefined)
    throw new NetworkBuildError(`netconvert built no traffic light for intersection ${id}`);
  const approachOfEdge = new Map(APPROACHES.map((a) => [geometry.inEdge(id, a), a]));
  const legOfEdge = new Map(LEGS.map((leg) => [geometry.outEdge(id, leg), leg]));
  const roles: (LinkRole | undefined)[] = Array.from({ length: count }, () => undefined);
  for (const link of net.links) {
    if (link.tl !== id) continue;
    let movement: string;
    const approach = approachOfEdge.get(link.from);
    if (approach !== undefined) {
      const leg = legOfEdge.get(link.to);
      const turn = leg === undefined ? undefined : TURN_OF_LEG(approach, leg);
      if (turn === undefined)
        throw new NetworkBuildError(`${id}: unexpected connection ${link.from} → ${link.to} in the net`);
      movement = `${approach}-${turn}`;
    } else {
      const crossed = net.crossings.get(link.to);
      const leg = LEGS.find((l) => crossed?.includes(geometry.inEdge(id, approachFromLeg(l))));
      if (leg === undefined)
        throw new NetworkBuildError(
          `${id}: link ${link.linkIndex} (${link.from} → ${link.to}) is neither a movement nor a crossing`,
        );
      movement = `crossing-${leg}`;
    }
    const role = layout.movements.get(movement);
    if (role === undefined)
      throw new NetworkBuildError(`${id}: the net has movement ${movement}, which no group serves`);
    const previous = roles[link.linkIndex];
    if (
      link.linkIndex < 0 ||
      link.linkIndex >= count ||
      (previous !== undefined && previous.movement !== movement)
    )
      throw new NetworkBuildError(`${id}: link index ${link.linkIndex} is out of range or used twice`);
    roles[link.linkIndex] = { group: role.group, kind: role.kind, movement };
  }
  const links = roles.map((role, k) => {
    if (role === undefined) throw new NetworkBuildError(`${id}: link index ${k} controls no connection`);
    return role;
  });
  checkRightOfWay(id, links, loaded.intersection.permissive, net);
  return { intersectionId: id, tlsId: id, links };
}

const approachFromLeg = (leg: Leg): Approach => APPROACHES.find((a) => FROM_LEG[a] === leg) as Approach;

function checkRightOfWay(
  id: string,
  links: readonly LinkRole[],
  permissive: readonly (readonly boolean[])[],
  net: NetFile,
): void {
  const requests = net.requests.get(id);
  if (requests === undefined)
    throw new NetworkBuildError(`${id}: the net has no right-of-way matrix for the junction`);
  links.forEach((a, i) => {
    links.forEach((b, j) => {
      if (j <= i) return;
      const together = a.group === b.group || permissive[a.group]?.[b.group] === true;
      const foes = requests[i]?.foes.has(j) === true || requests[j]?.foes.has(i) === true;
      if (!together || !foes) return;
      const aYields = requests[i]?.response.has(j) === true;
      const bYields = requests[j]?.response.has(i) === true;
      const ok = (a.kind === "permissive" && aYields) || (b.kind === "permissive" && bYields);
      if (!ok)
        throw new NetworkBuildError(
          `${id}: links ${i} (${a.movement}, ${a.kind}) and ${j} (${b.movement}, ${b.kind}) conflict and may be green together, but in SUMO's right of way neither permissive one yields: change the intersection's traffic block`,
        );
    });
  });
}

/** Advance loops on every through lane of the main-street approaches; stop-bar loops on every lane of every approach. */
function loopsOf(
  id: string,
  layout: TrafficLayout,
  geometry: CorridorGeometry,
  net: NetFile,
): LoopDetector[] {
  const loops: LoopDetector[] = [];
  const groupOf = (approach: Approach, turn: Turn) => layout.movements.get(`${approach}-${turn}`)?.group ?? 0;
  for (const approach of APPROACHES) {
    const edge = geometry.inEdge(id, approach);
    const { through, left } = layout.lanes[approach];
    const abbreviation = APPROACH_ABBREVIATION[approach];
    for (let v = 0; v < through + left; v++) {
      const length = laneLength(net, edge, v);
      const servedBy = v < through ? groupOf(approach, "through") : groupOf(approach, "left");
      loops.push({
        id: `${id}.${abbreviation}.bar.${v}`,
        intersectionId: id,
        approach,
        purpose: "stop-bar",
        distanceToStopLineM: Math.min(STOP_BAR_LOOP_M, length / 2),
        group: servedBy,
      });
      const main = approach === "eastbound" || approach === "westbound";
      if (main && v < through)
        loops.push({
          id: `${id}.${abbreviation}.adv.${v}`,
          intersectionId: id,
          approach,
          purpose: "advance",
          distanceToStopLineM: Math.min(ADVANCE_LOOP_M, Math.max(STOP_BAR_LOOP_M, length - 10)),
          group: servedBy,
        });
    }
  }
  return loops;
}

/** A vehicle lane's id (the sidewalk is lane 0) and length in the net. */
function laneLength(net: NetFile, edge: string, vehicleLane: number): number {
  const length = net.laneLengths.get(`${edge}_${vehicleLane + 1}`);
  if (length === undefined || !Number.isFinite(length))
    throw new NetworkBuildError(`the net has no lane ${vehicleLane + 1} on edge ${edge}`);
  return length;
}

function laneOfLoop(loop: LoopDetector, geometry: CorridorGeometry): string {
  const v = Number(loop.id.slice(loop.id.lastIndexOf(".") + 1));
  return `${geometry.inEdge(loop.intersectionId, loop.approach)}_${v + 1}`;
}

function additionalXml(loops: readonly LoopDetector[], geometry: CorridorGeometry, net: NetFile): string {
  const lines = loops.map((loop) => {
    const lane = laneOfLoop(loop, geometry);
    const length = net.laneLengths.get(lane) as number;
    const pos = (length - loop.distanceToStopLineM).toFixed(2);
    return `  <inductionLoop id="${loop.id}" lane="${lane}" pos="${pos}" period="60" file="NUL"/>`;
  });
  return `<?xml version="1.0" encoding="UTF-8"?>\n<additional>\n${lines.join("\n")}\n</additional>\n`;
}

/**
 * The routes file: one vehicle type, one route and one flow per origin–destination pair. Arrivals are
 * random (a Poisson process: `period="exp(rate)"`), drawn by SUMO from its --seed; the seed here
 * places each flow's first possible departure within its first mean headway, deterministically.
 */
/** Slower Poisson flows SUMO reads as rate 0 (it rounds the rate to thousandths: below). */
const SUMO_SLOWEST_POISSON_PER_S = 0.0005;

/**
 * SUMO (1.15; eclipse-sumo/sumo#14664) reads a Poisson flow's rate (`period="exp(r)"`, vehicles per
 * second) in whole thousandths: exp(0.0007) and exp(0.00095) both run at 0.001, exp(0.0016) at 0.002
 * (measured: the same 364 and 747 vehicles from 20 such flows over 20 000 s). Below 0.0005 the rate
 * reads as 0, and SUMO then inserts vehicles without end from the flow's begin on, until memory runs
 * out (23 GB within seconds, one simulated minute in). The off-peak demand has 12 such flows (side
 * street to side street across the corridor, under 1.8 veh/h). Those are written as SUMO's per-second
 * insertion probability instead, which it reads exactly: the same mean rate, a Bernoulli draw each
 * second (Poisson to within 0.05 % at these rates), from the same --seed. Only those: the flows SUMO
 * merely rounds run as before, so that runs of a demand without such flows do not change. Done where
 * the routes are written, so that the traffic run and the live demo both get it.
 */
export function sidestepSumoPoissonRates(routesXml: string): string {
  return routesXml.replace(/period="exp\(([\d.eE+-]+)\)"/g, (whole: string, text: string) =>
    Number(text) < SUMO_SLOWEST_POISSON_PER_S ? `probability="${text}"` : whole,
  );
}

function routesXml(flows: readonly Flow[], speedKmh: number, seed: number): string {
  const random = mulberry32(seed);
  const lines = [
    `  <vType id="${VEHICLE_TYPE_ID}" vClass="passenger" length="5" minGap="2.5" accel="2.6" decel="4.5" sigma="0.5" maxSpeed="${((speedKmh / 3.6) * 1.5).toFixed(2)}" speedFactor="normc(1,0.05,0.9,1.1)"/>`,
  ];
  const starts = flows.map((flow) => {
    const perSecond = flow.vehiclesPerHour / 3600;
    return { flow, perSecond, begin: Math.round(Math.min(random() / perSecond, 60) * 100) / 100 };
  });
  for (const { flow } of starts) lines.push(`  <route id="r_${flow.id}" edges="${flow.edges.join(" ")}"/>`);
  // SUMO reads flows in order of their start; ties keep the flows' order.
  for (const { flow, perSecond, begin } of [...starts].sort((a, b) => a.begin - b.begin))
    lines.push(
      `  <flow id="${flow.id}" type="${VEHICLE_TYPE_ID}" route="r_${flow.id}" begin="${begin.toFixed(2)}" end="86400" period="exp(${perSecond.toFixed(6)})" departLane="best" departSpeed="max"/>`,
    );
  return sidestepSumoPoissonRates(
    `<?xml version="1.0" encoding="UTF-8"?>\n<routes>\n${lines.join("\n")}\n</routes>\n`,
  );
}
