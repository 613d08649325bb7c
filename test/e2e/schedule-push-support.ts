import { cpSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ModuleLayout } from "../../devices/io-map.js";
import type { IntersectionPlan } from "../../gateway/core/model.js";
import { freePort } from "../../simulators/fixtures/ports.js";
import { makePlansFixedTime } from "../support/fixture-intersection.js";

/**
 * What test/e2e/schedule-push.test.ts needs besides processes: a copy of the example corridor that
 * can run beside another demo, a schedule whose change falls soon in the corridor's time zone, and
 * the stage starts read back from a simulated module's lamp history.
 */

/**
 * The example configuration copied under `dir`, its simulated modules on free ports (the shipped
 * intersections listen on fixed ones, which another demo on this machine may hold). Nothing else
 * changes but the plans' actuation (each stage runs its split): the same corridor, intersections,
 * plans and time reference. Returns the corridor file.
 */
export async function exampleCorridorCopy(dir: string): Promise<string> {
  for (const part of ["corridor.yaml", "intersections", "plans", "devices"])
    cpSync(join("config", part), join(dir, part), { recursive: true });
  // The lamps are read against the plans' splits: every stage runs its split (fixed time).
  makePlansFixedTime(join(dir, "plans"));
  const intersections = join(dir, "intersections");
  for (const name of readdirSync(intersections)) {
    const file = join(intersections, name);
    const text = readFileSync(file, "utf8");
    let moved = text;
    for (const match of text.matchAll(/tcp: "127\.0\.0\.1:(\d+)"/g))
      moved = moved.replace(match[0], `tcp: "127.0.0.1:${await freePort()}"`);
    if (moved === text) throw new Error(`${file}: no Modbus TCP link to move to a free port`);
    writeFileSync(file, moved);
  }
  return join(dir, "corridor.yaml");
}

/** Local time of day in an IANA zone, through Intl alone (not the code under test). */
export function localClock(zone: string, wallMs: number): { hhmm: string; secondsOfDay: number } {
  const parts = new Intl.DateTimeFormat("en-GB", {
    timeZone: zone,
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  }).formatToParts(new Date(wallMs));
  const part = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const [hour, minute, second] = [part("hour"), part("minute"), part("second")];
  return {
    hhmm: `${String(hour).padStart(2, "0")}:${String(minute).padStart(2, "0")}`,
    secondsOfDay: hour * 3600 + minute * 60 + second,
  };
}

export interface SoonSchedule {
  readonly text: string;
  /** The instant of the event that switches to `plan`: a whole minute, at least `leadMs` from now. */
  readonly changeAtMs: number;
  /** A later event, back to `base` (the change after that one). */
  readonly laterAtMs: number;
  readonly dayPlan: string;
}

/**
 * A schedule for every day with one day plan: `base` from an event a little in the past, `plan` from
 * the first whole minute at least `leadMs` ahead, and `base` again an hour later. Times are local to
 * `zone`, as the corridor reads them.
 */
export function soonSchedule(options: {
  id: string;
  version: number;
  corridor: string;
  zone: string;
  nowMs: number;
  leadMs: number;
  base: string;
  plan: string;
}): SoonSchedule {
  const { zone, nowMs } = options;
  const changeAtMs = Math.ceil((nowMs + options.leadMs) / 60_000) * 60_000;
  const laterAtMs = changeAtMs + 3_600_000;
  const change = localClock(zone, changeAtMs);
  if (change.secondsOfDay % 60 !== 0)
    throw new Error(`${zone}: ${new Date(changeAtMs).toISOString()} is not a whole local minute`);
  // Just after local midnight the minute "a little in the past" is yesterday's: 00:00 serves.
  const now = localClock(zone, nowMs);
  const past = now.secondsOfDay >= 120 ? localClock(zone, nowMs - 120_000).hhmm : "00:00";
  const dayPlan = "every-day";
  const text = [
    "kind: schedule",
    `id: ${options.id}`,
    `version: ${options.version}`,
    `corridor: ${options.corridor}`,
    `description: written by test/e2e/schedule-push.test.ts (${new Date(nowMs).toISOString()})`,
    "dayPlans:",
    `  ${dayPlan}:`,
    `    - { at: "${past}", action: ${options.base} }`,
    `    - { at: "${change.hhmm}", action: ${options.plan} }`,
    `    - { at: "${localClock(zone, laterAtMs).hhmm}", action: ${options.base} }`,
    "calendar:",
    `  - { weekdays: [mon, tue, wed, thu, fri, sat, sun], dayPlan: ${dayPlan} }`,
    "",
  ].join("\n");
  return { text, changeAtMs, laterAtMs, dayPlan };
}

/** One change of a simulated module's outputs (GET /history of its control port). */
export interface LampEntry {
  readonly t: number;
  readonly outputs: string;
}

export interface StageStart {
  readonly t: number;
  readonly stage: number;
}

/**
 * When each stage began, by the lamps: a stage begins when the groups it serves turn green (a vehicle
 * head) or WALK (a pedestrian head) — in one write, as the gateway starts them together. The plan gives
 * the stages' groups; `layout` says which channel lights each group's green or WALK.
 */
export function stageStarts(
  history: readonly LampEntry[],
  layout: ModuleLayout,
  plan: IntersectionPlan,
): StageStart[] {
  const goChannel = new Map<number, number>();
  layout.channels.forEach((use, channel) => {
    if (use?.lamp === "green") goChannel.set(use.group, channel);
  });
  const starts: StageStart[] = [];
  let before: boolean[] = [];
  for (const entry of history) {
    const go =
      plan.stages[0]?.member.map((_, group) => entry.outputs[goChannel.get(group) ?? -1] === "1") ?? [];
    const turnedOn = go.flatMap((on, group) => (on && before[group] !== true ? [group] : []));
    before = go;
    if (turnedOn.length === 0) continue;
    const stage = plan.stages.findIndex((s) => turnedOn.every((g) => s.member[g] === true));
    if (stage < 0)
      throw new Error(`${plan.intersectionId}: groups ${turnedOn.join(",")} turned on together in no stage`);
    if (starts.at(-1)?.stage !== stage) starts.push({ t: entry.t, stage });
  }
  return starts;
}
