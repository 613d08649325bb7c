import { existsSync, readdirSync } from "node:fs";
import { basename, dirname, extname, join, resolve } from "node:path";
import type { z } from "zod";
import {
  type DetectorWiring,
  type DeviceSpec,
  type Link,
  layoutModules,
  type ModuleLayout,
  type ModuleProfile,
  wireDetectors,
} from "../../devices/io-map.js";
import type { Issue } from "../core/issues.js";
import {
  DAY_MS,
  type Intersection,
  type IntersectionPlan,
  type SignalGroup,
  type StageActuation,
} from "../core/model.js";
import { checkPlanPart, compilePlan, type PlanHeader, type PlanPartSpec } from "../core/plan.js";
import type { TimeReference } from "../core/time/time-reference.js";
import { formatSeconds, mod, secondsToMs } from "../core/units.js";
import { ConfigError, displayPath, type LocatedIssue, UnreadableConfigFileError } from "./errors.js";
import { buildDetectors } from "./load-detectors.js";
import {
  type CorridorFile,
  corridorFileSchema,
  type DeviceFile,
  deviceProfileFileSchema,
  type FileKind,
  fileSchemas,
  type IntersectionFile,
  intersectionFileSchema,
  type PlanFile,
  type PlanPartFile,
  planFileSchema,
  type StageActuationFile,
} from "./schema.js";
import { trafficLayout } from "./traffic-schema.js";
import { validate } from "./validate.js";
import { planDigest } from "./plan-digest.js";
import { parseYamlText, readYamlFile, type YamlFile } from "./yaml-file.js";

/** MUTCD 4E.06: pedestrian clearance is sized for a walking speed of 3.5 ft/s. */
export const PEDESTRIAN_SPEED_M_PER_S = 1.07;

export interface Loaded<T> {
  readonly file: string;
  readonly raw: T;
  readonly yaml: YamlFile;
}

export interface LoadedCorridor extends Loaded<CorridorFile> {
  /** The daily sync point and, when the corridor names one, its time zone. */
  readonly timeReference: TimeReference;
  /**
   * `timeReference.dailySyncMs`: ms after 00:00 UTC for a corridor with a fixed `utcOffset`, but the
   * sync's LOCAL time of day for one with a `timeZone` (whose UTC time of day moves with daylight-saving
   * time). Kept for the callers that predate time zones; new code reads `timeReference`.
   */
  readonly dailySyncMs: number;
  /** Absolute path of each intersection's file, by intersection id. */
  readonly intersectionFiles: ReadonlyMap<string, string>;
  readonly plansDirectory: string;
}

export interface LoadedIntersection extends Loaded<IntersectionFile> {
  readonly intersection: Intersection;
  /** The intersection's I/O modules, checked against its groups. */
  readonly modules: readonly ModuleLayout[];
  /** Where each of `intersection.detectors` is read, in the same order (empty without detectors). */
  readonly detectorWiring: readonly DetectorWiring[];
}

export type LoadedPlan = Loaded<PlanFile>;

/** Everything one gateway needs to run its intersection. */
export interface IntersectionSetup {
  readonly intersection: LoadedIntersection;
  readonly corridor: LoadedCorridor;
  readonly initialPlan: IntersectionPlan;
}

export function fileKindOf(yaml: YamlFile): FileKind {
  const data = yaml.data as { kind?: unknown } | null;
  const kind = typeof data === "object" && data !== null ? data.kind : undefined;
  // An own key only: `kind: constructor` is not a file kind just because every object has one.
  if (typeof kind === "string" && Object.hasOwn(fileSchemas, kind)) return kind as FileKind;
  throw new ConfigError(
    yaml.locate([
      {
        path: typeof kind === "undefined" ? [] : ["kind"],
        message: `unknown file kind ${JSON.stringify(kind)}: a config file starts with "kind: intersection", "kind: corridor", "kind: plan", "kind: schedule", "kind: demand", "kind: keyring" or "kind: device-profile"`,
      },
    ]),
  );
}

function fail(yaml: YamlFile, issues: readonly Issue[]): never {
  throw new ConfigError(yaml.locate(issues));
}

/**
 * Loads a file that another one names (an intersection's corridor, a corridor's intersections, an
 * initial plan): a file that cannot be read at all (missing, a device, a FIFO, too large) is reported
 * at the field that named it, so that the user knows which line to fix.
 */
export function loadReferenced<T>(
  referrer: YamlFile,
  field: readonly (string | number)[],
  what: string,
  load: () => T,
): T {
  try {
    return load();
  } catch (error) {
    if (!(error instanceof UnreadableConfigFileError)) throw error;
    fail(referrer, [
      { path: field, message: `cannot read the ${what} ${displayPath(error.file)}: ${error.reason}` },
    ]);
  }
}

export function loadCorridor(file: string): LoadedCorridor {
  const path = resolve(file);
  const yaml = readYamlFile(path);
  const raw = validate(corridorFileSchema, yaml);
  const issues: Issue[] = [];
  const seen = new Set<string>();
  raw.intersections.forEach((entry, i) => {
    if (seen.has(entry.id))
      issues.push({ path: ["intersections", i, "id"], message: `intersection ${entry.id} is listed twice` });
    seen.add(entry.id);
  });
  if (issues.length > 0) fail(yaml, issues);
  const dir = dirname(path);
  const timeReference = timeReferenceOf(raw.timeReference);
  return {
    file: path,
    raw,
    yaml,
    timeReference,
    dailySyncMs: timeReference.dailySyncMs,
    intersectionFiles: new Map(raw.intersections.map((entry) => [entry.id, resolve(dir, entry.file)])),
    plansDirectory: resolve(dir, raw.plansDirectory),
  };
}

/** A corridor's time reference: local to its zone, or at its fixed offset (+00:00 if it names neither). */
export function timeReferenceOf(t: CorridorFile["timeReference"]): TimeReference {
  if (t.timeZone !== undefined) return { dailySyncMs: dailySyncUtcMs(t.dailySync, "+00:00"), timeZone: t.timeZone };
  return { dailySyncMs: dailySyncUtcMs(t.dailySync, t.utcOffset ?? "+00:00") };
}

/** "02:00:00" at "+01:00" is 01:00:00 UTC: milliseconds after 00:00 UTC. */
export function dailySyncUtcMs(hhmmss: string, utcOffset: string): number {
  const [h, m, s] = hhmmss.split(":").map(Number) as [number, number, number];
  const sign = utcOffset.startsWith("-") ? -1 : 1;
  const [oh, om] = utcOffset.slice(1).split(":").map(Number) as [number, number];
  return mod(((h * 60 + m) * 60 + s) * 1000 - sign * (oh * 60 + om) * 60_000, DAY_MS);
}

export function loadIntersection(file: string): LoadedIntersection {
  const path = resolve(file);
  const yaml = readYamlFile(path);
  const raw = validate(intersectionFileSchema, yaml);
  // The groups' problems and the wiring's are independent: all are reported at once.
  const { intersection, issues: groupIssues } = buildIntersection(raw);
  const issues: LocatedIssue[] = yaml.locate(groupIssues);
  const devices: DeviceSpec[] = [];
  raw.devices.forEach((device, d) => {
    try {
      devices.push(deviceSpec(device, resolve(dirname(path), device.profile), yaml, d));
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      issues.push(...error.issues);
    }
  });
  // Wiring is checked once every device is known: a device left out would leave its lamps "not wired".
  if (devices.length === raw.devices.length) {
    const { layouts, issues: wiringIssues } = layoutModules(intersection, devices);
    issues.push(...yaml.locate(wiringIssues));
    const { wiring, issues: detectorIssues } = wireDetectors(intersection, raw.detectors, layouts);
    issues.push(...yaml.locate(detectorIssues));
    if (issues.length === 0)
      return { file: path, raw, yaml, intersection, modules: layouts, detectorWiring: wiring };
  } else {
    // A detector on a device that failed to load is not checked further; one on no device of the file is.
    const unloaded = raw.devices.map((device) => device.id);
    issues.push(...yaml.locate(wireDetectors(intersection, raw.detectors, [], ["detectors"], unloaded).issues));
  }
  throw new ConfigError(issues);
}

export function loadDeviceProfile(
  file: string,
): Loaded<z.output<typeof deviceProfileFileSchema>> & { profile: ModuleProfile } {
  const path = resolve(file);
  const yaml = readYamlFile(path);
  const raw = validate(deviceProfileFileSchema, yaml);
  return { file: path, raw, yaml, profile: raw };
}

function deviceSpec(device: DeviceFile, profileFile: string, yaml: YamlFile, d: number): DeviceSpec {
  const profile = loadProfileOf(device, profileFile, yaml, d);
  let link: Link;
  if ("tcp" in device.link) {
    const at = device.link.tcp.lastIndexOf(":");
    const host = device.link.tcp.slice(0, at).replace(/^\[|\]$/g, "");
    const port = Number(device.link.tcp.slice(at + 1));
    if (port < 1 || port > 65_535)
      fail(yaml, [{ path: ["devices", d, "link", "tcp"], message: `port ${port} is out of range` }]);
    link = { kind: "tcp", host, port };
  } else {
    link = {
      kind: "serial",
      path: device.link.serial,
      serial: {
        ...profile.serial,
        ...(device.link.baudRate === undefined ? {} : { baudRate: device.link.baudRate }),
        ...(device.link.parity === undefined ? {} : { parity: device.link.parity }),
        ...(device.link.stopBits === undefined ? {} : { stopBits: device.link.stopBits }),
      },
    };
  }
  return {
    id: device.id,
    profile,
    link,
    unitId: device.unitId ?? profile.unitId,
    timeoutMs: device.timeoutMs,
    retries: device.retries,
    faultWindowMs: device.faultWindowMs,
    watchdogMs: device.watchdogMs,
    channels: device.channels,
  };
}

/** A device's profile; its problems are reported at the device's `profile` field too. */
function loadProfileOf(device: DeviceFile, profileFile: string, yaml: YamlFile, d: number): ModuleProfile {
  const field = ["devices", d, "profile"];
  try {
    return loadDeviceProfile(profileFile).profile;
  } catch (error) {
    if (error instanceof UnreadableConfigFileError)
      fail(yaml, [
        {
          path: field,
          message: `device ${device.id}: cannot read its profile ${displayPath(error.file)}: ${error.reason}`,
        },
      ]);
    if (!(error instanceof ConfigError)) throw error;
    throw new ConfigError([
      ...yaml.locate([{ path: field, message: `device ${device.id}: its profile ${device.profile} is not valid` }]),
      ...error.issues,
    ]);
  }
}

/** The intersection a file describes, and its problems (the intersection is for further checks only if any). */
function buildIntersection(raw: IntersectionFile): { intersection: Intersection; issues: Issue[] } {
  const issues: Issue[] = [];
  const index = indexGroups(raw, issues);
  const permissive = permissiveMatrix(raw, index, issues);
  // The traffic simulation's view of the groups (docs/traffic-network.md), checked with the rest when
  // the file gives one. Without a `traffic:` block the intersection loads whatever its groups are
  // called: a gateway never depends on the simulation; `sim traffic` says what is missing.
  if (raw.traffic !== undefined) issues.push(...trafficLayout(raw.traffic, raw.groups, permissive).issues);
  const groups = raw.groups.map(signalGroup);
  const { detectors, issues: detectorIssues } = buildDetectors(raw.detectors, groups, index);
  issues.push(...detectorIssues);
  const yellowFlash = groups.map((g, i) => (g.scheduledFlash === "yellow" ? i : -1)).filter((i) => i >= 0);
  for (const a of yellowFlash) {
    for (const b of yellowFlash) {
      if (a < b && !permissive[a]?.[b]) {
        issues.push({
          path: ["groups", b, "flash"],
          message: `groups ${groups[a]?.id} and ${groups[b]?.id} both flash yellow but are not permissive`,
        });
      }
    }
  }
  const maxRedClearance = Math.max(...groups.map((g) => g.redClearanceMs));
  const allRedMs = secondsToMs(raw.startup.allRedSeconds);
  if (allRedMs < maxRedClearance) {
    issues.push({
      path: ["startup", "allRedSeconds"],
      message: `start-up all-red ${formatSeconds(allRedMs)} is shorter than the longest red clearance (${formatSeconds(maxRedClearance)})`,
    });
  }
  const intersection: Intersection = {
    id: raw.id,
    name: raw.name,
    corridorId: "",
    groups,
    permissive,
    startupFlashMs: secondsToMs(raw.startup.flashSeconds),
    startupAllRedMs: allRedMs,
    flashPeriodMs: Math.round(60_000 / raw.flash.flashesPerMinute),
    monitor: raw.monitor,
    ...(raw.phases ? { phases: phaseNumbers(raw, index, issues) } : {}),
    ...(detectors.length > 0 ? { detectors } : {}),
  };
  return { intersection, issues };
}

/**
 * The event log's phase numbers, by group index: every group listed once, and no two groups of one kind
 * on one number (a vehicle and a pedestrian group may share one, as NEMA's phase 2 and its walk do).
 */
function phaseNumbers(raw: IntersectionFile, index: ReadonlyMap<string, number>, issues: Issue[]): number[] {
  const listed = raw.phases ?? {};
  const numbers = raw.groups.map((_, i) => i + 1);
  for (const groupId of Object.keys(listed))
    if (!index.has(groupId))
      issues.push({
        path: ["phases", groupId],
        message: `phases names unknown group ${groupId} (groups: ${raw.groups.map((g) => g.id).join(", ")})`,
      });
  const taken = new Map<string, string>();
  raw.groups.forEach((group, i) => {
    const phase = Object.hasOwn(listed, group.id) ? listed[group.id] : undefined;
    if (phase === undefined) {
      issues.push({
        path: ["phases"],
        message: `phases gives no number for group ${group.id}: list every group, or leave phases out to number them 1, 2, … in file order`,
      });
      return;
    }
    numbers[i] = phase;
    const key = `${group.kind}:${phase}`;
    const other = taken.get(key);
    if (other !== undefined)
      issues.push({
        path: ["phases", group.id],
        message: `${group.kind} groups ${other} and ${group.id} both have phase ${phase}: the event log could not tell them apart`,
      });
    else taken.set(key, group.id);
  });
  return numbers;
}

/** Each group's index by id; a group defined twice, or a pedestrian clearance too short for its crossing, is an issue. */
function indexGroups(raw: IntersectionFile, issues: Issue[]): Map<string, number> {
  const index = new Map<string, number>();
  raw.groups.forEach((g, i) => {
    if (index.has(g.id)) issues.push({ path: ["groups", i, "id"], message: `group ${g.id} is defined twice` });
    index.set(g.id, i);
    if (g.kind === "pedestrian" && g.crossingMeters !== undefined) {
      const needS = g.crossingMeters / PEDESTRIAN_SPEED_M_PER_S;
      if (g.pedestrianClearanceSeconds < needS - 1e-9) {
        issues.push({
          path: ["groups", i, "pedestrianClearanceSeconds"],
          message: `pedestrian clearance ${g.pedestrianClearanceSeconds} s is too short for a ${g.crossingMeters} m crossing at ${PEDESTRIAN_SPEED_M_PER_S} m/s (3.5 ft/s): it needs at least ${Math.ceil(needS * 10) / 10} s`,
        });
      }
    }
  });
  return index;
}

/** Which pairs of groups may show green/yellow/walk together: symmetric, never a group with itself. */
function permissiveMatrix(raw: IntersectionFile, index: ReadonlyMap<string, number>, issues: Issue[]): boolean[][] {
  const n = raw.groups.length;
  const permissive = Array.from({ length: n }, () => Array<boolean>(n).fill(false));
  for (const [groupId, others] of Object.entries(raw.permissive)) {
    const a = index.get(groupId);
    if (a === undefined) {
      issues.push({ path: ["permissive", groupId], message: `permissive matrix names unknown group ${groupId}` });
      continue;
    }
    others.forEach((otherId, k) => {
      const b = index.get(otherId);
      if (b === undefined)
        issues.push({ path: ["permissive", groupId, k], message: `permissive matrix names unknown group ${otherId}` });
      else if (a === b)
        issues.push({ path: ["permissive", groupId, k], message: `group ${groupId} cannot be permissive with itself` });
      else {
        (permissive[a] as boolean[])[b] = true;
        (permissive[b] as boolean[])[a] = true;
      }
    });
  }
  return permissive;
}

function signalGroup(g: IntersectionFile["groups"][number]): SignalGroup {
  return g.kind === "vehicle"
    ? {
        id: g.id,
        kind: "vehicle",
        minGoMs: secondsToMs(g.minGreenSeconds),
        clearanceMs: secondsToMs(g.yellowSeconds),
        redClearanceMs: secondsToMs(g.redClearanceSeconds),
        scheduledFlash: g.flash,
      }
    : {
        id: g.id,
        kind: "pedestrian",
        minGoMs: secondsToMs(g.walkSeconds),
        clearanceMs: secondsToMs(g.pedestrianClearanceSeconds),
        redClearanceMs: secondsToMs(g.redClearanceSeconds),
        scheduledFlash: "red",
      };
}

export function loadPlan(file: string): LoadedPlan {
  const { file: path, raw, yaml } = readPlanFile(file);
  return checkedPlan(path, raw, yaml);
}

/**
 * A plan file checked against its schema and its file name, its parts not yet checked: `config check`
 * checks each part with the intersection it is for, to report all of a part's problems at once.
 */
export function readPlanFile(file: string): LoadedPlan {
  const path = resolve(file);
  const yaml = readYamlFile(path);
  const raw = validate(planFileSchema, yaml);
  const expected = `${raw.id}.yaml`;
  if (basename(path) !== expected && basename(path) !== `${raw.id}.yml`) {
    fail(yaml, [{ path: ["id"], message: `plan ${raw.id} must be in a file named ${expected}, not ${basename(path)}` }]);
  }
  return { file: path, raw, yaml };
}

/** A plan received as text (YAML or JSON): the same checks as a plan file. */
export function loadPlanText(label: string, text: string): LoadedPlan {
  const yaml = parseYamlText(label, text);
  return checkedPlan(label, validate(planFileSchema, yaml), yaml);
}

/**
 * A plan received as data (in a PREPARE or a plan-push command): the plan file's schema, and the part
 * of one intersection (`only`) or every part.
 * Issues name the field path (there are no lines to point at).
 */
export function loadPlanData(label: string, data: unknown, only?: string): LoadedPlan {
  const located: YamlFile = {
    file: label,
    data,
    locate: (issues) => issues.map((issue) => ({ file: label, path: issue.path, message: issue.message })),
  };
  return checkedPlan(label, validate(planFileSchema, located), located, only);
}

function checkedPlan(path: string, raw: PlanFile, yaml: YamlFile, only?: string): LoadedPlan {
  const issues: Issue[] = [];
  const header = planHeader(raw, { dailySyncMs: 0 });
  for (const [intersectionId, part] of Object.entries(raw.intersections)) {
    if (only !== undefined && intersectionId !== only) continue;
    issues.push(
      ...checkPlanPart(header, planPartSpec(part), intersectionId, ["intersections", intersectionId]),
    );
  }
  if (issues.length > 0) fail(yaml, issues);
  return { file: path, raw, yaml };
}

export function planHeader(raw: PlanFile, timeReference: TimeReference): PlanHeader {
  return {
    planId: raw.id,
    version: raw.version,
    cycleMs: secondsToMs(raw.cycleSeconds),
    dailySyncMs: timeReference.dailySyncMs,
    ...(timeReference.timeZone === undefined ? {} : { timeZone: timeReference.timeZone }),
    ...(raw.pattern === undefined ? {} : { pattern: raw.pattern }),
  };
}

export function planPartSpec(part: PlanPartFile): PlanPartSpec {
  return {
    offsetMs: secondsToMs(part.offsetSeconds),
    offsetReference: part.offsetReference,
    coordinatedStage: part.coordinatedStage,
    correction: part.correction,
    stages: part.stages.map((s) => ({
      id: s.id,
      groups: s.groups,
      splitMs: secondsToMs(s.splitSeconds),
      ...(s.actuated === undefined ? {} : { actuated: stageActuation(s.actuated) }),
    })),
  };
}

/** A stage's `actuated:` in ms; compilePlan checks it against the stage and its intersection. */
export function stageActuation(a: StageActuationFile): StageActuation {
  return {
    minGreenMs: secondsToMs(a.minGreenSeconds),
    passageMs: secondsToMs(a.passageSeconds),
    maxGreenMs: secondsToMs(a.maxGreenSeconds),
    recall: a.recall,
    pedestrianRecall: a.pedestrianRecall,
  };
}

/** Compiles one intersection's part of a loaded plan; issues point into the plan file. */
export function compileIntersectionPlan(
  intersection: Intersection,
  plan: LoadedPlan,
  corridor: LoadedCorridor,
): IntersectionPlan {
  const issues: Issue[] = [];
  if (plan.raw.corridor !== corridor.raw.id) {
    issues.push({
      path: ["corridor"],
      message: `plan ${plan.raw.id} is for corridor ${plan.raw.corridor}, not ${corridor.raw.id}`,
    });
  }
  // An own part only: the id comes from a file or a message, and every object has a `valueOf`.
  const part = Object.hasOwn(plan.raw.intersections, intersection.id)
    ? plan.raw.intersections[intersection.id]
    : undefined;
  if (!part) {
    issues.push({
      path: ["intersections"],
      message: `plan ${plan.raw.id} has no part for intersection ${intersection.id}`,
    });
  }
  if (issues.length > 0 || !part) fail(plan.yaml, issues);
  const compiled = compilePlan(intersection, planHeader(plan.raw, corridor.timeReference), planPartSpec(part), [
    "intersections",
    intersection.id,
  ]);
  if (!compiled.ok) fail(plan.yaml, compiled.issues);
  // The plan's identity travels with what the lamps run (the status, the store, a PREPARE's check).
  return { ...compiled.value, digest: planDigest(plan.raw) };
}

export function planFileFor(corridor: LoadedCorridor, planId: string): string {
  return join(corridor.plansDirectory, `${planId}.yaml`);
}

/** Every plan file in the corridor's plans directory. */
export function listPlanFiles(corridor: LoadedCorridor): string[] {
  try {
    return readdirSync(corridor.plansDirectory)
      .filter((f) => extname(f) === ".yaml" || extname(f) === ".yml")
      .sort()
      .map((f) => join(corridor.plansDirectory, f));
  } catch {
    throw new ConfigError(
      corridor.yaml.locate([
        { path: ["plansDirectory"], message: `plans directory ${corridor.plansDirectory} cannot be read` },
      ]),
    );
  }
}

/** An intersection's `initialPlan` that names no plan file of its corridor: an issue at that field. */
export function missingInitialPlan(loaded: Loaded<IntersectionFile>, corridor: LoadedCorridor): LocatedIssue[] {
  const planId = loaded.raw.initialPlan;
  if (existsSync(planFileFor(corridor, planId))) return [];
  let plans: string[] = [];
  try {
    plans = listPlanFiles(corridor).map((f) => basename(f, extname(f)));
  } catch {
    // An unreadable plans directory is the corridor's own problem, reported with the corridor.
  }
  return loaded.yaml.locate([
    {
      path: ["initialPlan"],
      message: `initial plan ${planId} is not a plan of corridor ${corridor.raw.id}: there is no ${planId}.yaml in its plans directory ${displayPath(corridor.plansDirectory)} (${plans.length > 0 ? `it has ${plans.join(", ")}` : "it has none"})`,
    },
  ]);
}

/** The corridor an intersection's file names, relative to that file. */
export function loadCorridorOf(loaded: LoadedIntersection): LoadedCorridor {
  return loadReferenced(loaded.yaml, ["corridor"], "corridor file", () =>
    loadCorridor(resolve(dirname(loaded.file), loaded.raw.corridor)),
  );
}

/** Loads an intersection with its corridor and compiles its initial plan: what a gateway starts from. */
export function loadIntersectionSetup(file: string): IntersectionSetup {
  const loaded = loadIntersection(file);
  const corridor = loadCorridorOf(loaded);
  const member = corridor.intersectionFiles.get(loaded.raw.id);
  if (!member) {
    fail(loaded.yaml, [
      {
        path: ["corridor"],
        message: `corridor ${corridor.raw.id} (${corridor.file}) does not list intersection ${loaded.raw.id}`,
      },
    ]);
  }
  const intersection: LoadedIntersection = {
    ...loaded,
    intersection: { ...loaded.intersection, corridorId: corridor.raw.id },
  };
  const missing = missingInitialPlan(loaded, corridor);
  if (missing.length > 0) throw new ConfigError(missing);
  const plan = loadReferenced(loaded.yaml, ["initialPlan"], "initial plan", () =>
    loadPlan(planFileFor(corridor, loaded.raw.initialPlan)),
  );
  return {
    intersection,
    corridor,
    initialPlan: compileIntersectionPlan(intersection.intersection, plan, corridor),
  };
}
