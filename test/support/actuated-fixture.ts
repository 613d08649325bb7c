import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";

/**
 * The shipped elm intersection (config/intersections/elm.yaml: actuated off-peak plan) for end-to-end
 * tests: a copy of config/ whose elm module is on a given port, and the plan's grid — the instants at
 * which elm's coordinated band should start — computed here from the corridor's daily sync and the
 * plan's offset, independently of the gateway's own arithmetic (gateway/core/correction.ts).
 */

export interface ElmCopy {
  /** The copy's directory (remove it when done). */
  readonly dir: string;
  /** The copy's elm.yaml: what `greenwave gateway --config` is given. */
  readonly elm: string;
  readonly dataDir: string;
}

/**
 * config/ copied (without its broken examples) with elm's module moved to `modbusPort` on loopback and
 * elm.yaml passed through `edit`.
 */
export function writeElmCopy(modbusPort: number, edit: (text: string) => string = (t) => t): ElmCopy {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-actuation-"));
  cpSync("config", join(dir, "config"), { recursive: true, filter: (src) => !src.includes("broken") });
  const elm = join(dir, "config", "intersections", "elm.yaml");
  const text = readFileSync(elm, "utf8");
  const moved = text.replace(/tcp: "127\.0\.0\.1:\d+"/, `tcp: "127.0.0.1:${modbusPort}"`);
  if (moved === text) throw new Error(`elm.yaml has no tcp link to move to port ${modbusPort}`);
  writeFileSync(elm, edit(moved));
  return { dir, elm, dataDir: join(dir, "data") };
}

/** elm.yaml's S-loops detector with its chatter limit set (on-transitions per minute). */
export function withChatterLimit(text: string, perMinute: number): string {
  const line = "- { id: S-loops, device: io1, input: 16, calls: [S] }";
  if (!text.includes(line)) throw new Error(`elm.yaml no longer has the line ${line}`);
  return text.replace(
    line,
    `- { id: S-loops, device: io1, input: 16, calls: [S], diagnostics: { chatterPerMinute: ${perMinute} } }`,
  );
}

/** What the tests need of elm's part of the off-peak plan, read from the shipped files. */
export interface ElmPlan {
  readonly cycleMs: number;
  readonly offsetMs: number;
  /** The stages in order, with their splits (ms) and actuation (ms), as the plan file gives them. */
  readonly stages: readonly {
    readonly id: string;
    readonly groups: readonly string[];
    readonly splitMs: number;
    readonly actuated?: {
      readonly minGreenMs: number;
      readonly passageMs: number;
      readonly maxGreenMs: number;
    };
  }[];
  readonly coordinatedStage: string;
  readonly maxDwellMs: number;
  /** The corridor's daily sync: local time of day (ms) in `timeZone`. */
  readonly dailySyncMs: number;
  readonly timeZone: string;
}

interface PlanStageFile {
  id: string;
  groups: string[];
  splitSeconds: number;
  actuated?: { minGreenSeconds: number; passageSeconds: number; maxGreenSeconds: number };
}

export function readElmPlan(configDir = "config"): ElmPlan {
  const corridor = parse(readFileSync(join(configDir, "corridor.yaml"), "utf8")) as {
    timeReference: { dailySync: string; timeZone: string };
  };
  const plan = parse(readFileSync(join(configDir, "plans", "off-peak.yaml"), "utf8")) as {
    cycleSeconds: number;
    intersections: {
      elm: {
        offsetSeconds: number;
        offsetReference: string;
        coordinatedStage: string;
        correction: { mode: string; maxDwellPercent: number };
        stages: PlanStageFile[];
      };
    };
  };
  const elm = plan.intersections.elm;
  // The grid below is the start of the coordinated stage's green: the plan must say so.
  if (elm.offsetReference !== "start-of-green" || elm.correction.mode !== "dwell")
    throw new Error("off-peak elm: this fixture expects offsetReference start-of-green and dwell correction");
  const [h, m, s] = corridor.timeReference.dailySync.split(":").map(Number) as [number, number, number];
  const cycleMs = plan.cycleSeconds * 1000;
  return {
    cycleMs,
    offsetMs: elm.offsetSeconds * 1000,
    stages: elm.stages.map((st) => ({
      id: st.id,
      groups: st.groups,
      splitMs: st.splitSeconds * 1000,
      ...(st.actuated
        ? {
            actuated: {
              minGreenMs: st.actuated.minGreenSeconds * 1000,
              passageMs: st.actuated.passageSeconds * 1000,
              maxGreenMs: st.actuated.maxGreenSeconds * 1000,
            },
          }
        : {}),
    })),
    coordinatedStage: elm.coordinatedStage,
    maxDwellMs: (cycleMs * elm.correction.maxDwellPercent) / 100,
    dailySyncMs: ((h * 60 + m) * 60 + s) * 1000,
    timeZone: corridor.timeReference.timeZone,
  };
}

/** How far `zone`'s local time is ahead of UTC at `atMs`. */
function zoneOffsetMs(zone: string, atMs: number): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: zone,
    hourCycle: "h23",
    year: "numeric",
    month: "numeric",
    day: "numeric",
    hour: "numeric",
    minute: "numeric",
    second: "numeric",
  }).formatToParts(atMs);
  const part = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const local = Date.UTC(
    part("year"),
    part("month") - 1,
    part("day"),
    part("hour"),
    part("minute"),
    part("second"),
  );
  return local - Math.floor(atMs / 1000) * 1000;
}

/**
 * A daily sync instant near `wallMs`: the sync's local time on `wallMs`'s UTC date, in the zone's
 * offset. Which day's sync it is does not matter for the grid: a day is 23, 24 or 25 hours, each a
 * whole number of 80 s cycles (nor does a daylight-saving change: an hour is 45 cycles).
 */
function syncNear(plan: ElmPlan, wallMs: number): number {
  const day = Math.floor(wallMs / 86_400_000) * 86_400_000;
  const guess = day + plan.dailySyncMs;
  return guess - zoneOffsetMs(plan.timeZone, guess);
}

const mod = (a: number, m: number) => ((a % m) + m) % m;

/**
 * The first instant at or after `wallMs` at which elm's coordinated band should start: the daily sync
 * plus the plan's offset plus a whole number of cycles (the coordinated stage is the plan's first, and
 * its offset is its start of green).
 */
export function bandStartAtOrAfter(plan: ElmPlan, wallMs: number): number {
  if (plan.stages[0]?.id !== plan.coordinatedStage)
    throw new Error("off-peak elm: this fixture expects the coordinated stage first");
  if (3_600_000 % plan.cycleMs !== 0)
    throw new Error(`a ${plan.cycleMs} ms cycle does not divide an hour: the grid depends on the day`);
  const origin = syncNear(plan, wallMs) + plan.offsetMs;
  return wallMs + mod(origin - wallMs, plan.cycleMs);
}
