import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { IntersectionPlan } from "../../gateway/core/model.js";

/**
 * A small, fast intersection for end-to-end tests (30 s cycle, short start-up), written to a temp
 * directory with its corridor and plan, wired to one generic DO/DI module on the given link.
 *
 * Channels: M red/yellow/green 0-2, S 3-5, PS dontWalk/walk 6-7, PM 8-9.
 */
export const FIXTURE = {
  cycleMs: 30_000,
  groups: {
    M: { kind: "vehicle", minGoMs: 5000, clearanceMs: 3000, redClearanceMs: 1000, channels: [0, 1, 2] },
    S: { kind: "vehicle", minGoMs: 5000, clearanceMs: 3000, redClearanceMs: 1000, channels: [3, 4, 5] },
    PS: { kind: "pedestrian", minGoMs: 7000, clearanceMs: 5000, redClearanceMs: 0, channels: [6, 7] },
    PM: { kind: "pedestrian", minGoMs: 7000, clearanceMs: 5000, redClearanceMs: 0, channels: [8, 9] },
  },
  permissive: [
    ["M", "PS"],
    ["S", "PM"],
  ],
  stages: [
    { id: "main", groups: ["M", "PS"], splitMs: 16_000 },
    { id: "side", groups: ["S", "PM"], splitMs: 14_000 },
  ],
  startupMs: 5000,
} as const;

/** Where the fixture's files go and what they refer to (an installed gateway has its own paths). */
export interface FixtureOptions {
  /** Appended to the intersection file. */
  readonly extra?: string;
  /** The device profile's path, as the gateway that reads the file sees it. */
  readonly profile?: string;
  /** The intersection file's name, beside the corridor file and the plans directory. */
  readonly intersectionFile?: string;
}

/** The fixture's files by path relative to one directory: the corridor, its plan and the intersection. */
export function fixtureFiles(link: string, options: FixtureOptions = {}): Record<string, string> {
  const intersectionFile = options.intersectionFile ?? "x1.yaml";
  const profile = options.profile ?? resolve("config/devices/generic-do32-di32.yaml");
  return {
    "corridor.yaml": `kind: corridor
id: test-corridor
name: Test corridor
timeReference: { dailySync: "00:00:00" }
intersections:
  - { id: x1, file: ${intersectionFile}, distanceMeters: 0 }
`,
    "plans/fast.yaml": `kind: plan
id: fast
version: 1
corridor: test-corridor
cycleSeconds: 30
intersections:
  x1:
    offsetSeconds: 0
    coordinatedStage: main
    correction: { mode: shortway, maxLengthenPercent: 20, maxShortenPercent: 15 }
    stages:
      - { id: main, groups: [M, PS], splitSeconds: 16 }
      - { id: side, groups: [S, PM], splitSeconds: 14 }
`,
    [intersectionFile]: `kind: intersection
id: x1
name: Test St & Fast Ave
corridor: corridor.yaml
initialPlan: fast
groups:
  - { id: M, kind: vehicle, minGreenSeconds: 5, yellowSeconds: 3, redClearanceSeconds: 1 }
  - { id: S, kind: vehicle, minGreenSeconds: 5, yellowSeconds: 3, redClearanceSeconds: 1 }
  - { id: PS, kind: pedestrian, walkSeconds: 7, pedestrianClearanceSeconds: 5 }
  - { id: PM, kind: pedestrian, walkSeconds: 7, pedestrianClearanceSeconds: 5 }
permissive:
  M: [PS]
  S: [PM]
startup: { flashSeconds: 3, allRedSeconds: 2 }
devices:
  - id: io1
    profile: ${profile}
    link: ${link}
    timeoutMs: 200
    retries: 1
    faultWindowMs: 1000
    watchdogMs: 1000
    channels:
      M: { red: 0, yellow: 1, green: 2 }
      S: { red: 3, yellow: 4, green: 5 }
      PS: { dontWalk: 6, walk: 7 }
      PM: { dontWalk: 8, walk: 9 }
${options.extra ?? ""}`,
  };
}

/** Writes the fixture's files into `dir` (created if missing). */
export function writeFixtureFiles(dir: string, files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
}

export function writeFixture(
  link: string,
  extra = "",
): { dir: string; intersection: string; dataDir: string } {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-e2e-"));
  writeFixtureFiles(dir, fixtureFiles(link, { extra }));
  return { dir, intersection: join(dir, "x1.yaml"), dataDir: join(dir, "data") };
}

/**
 * The example plans of a config copy made fixed-time: every stage's `actuated:` removed, so that each
 * stage runs its split whatever the detectors say (for tests that read the plan's splits off the lamps).
 */
export function makePlansFixedTime(plansDir: string): void {
  for (const name of readdirSync(plansDir)) {
    const file = join(plansDir, name);
    const text = readFileSync(file, "utf8");
    writeFileSync(file, text.replace(/,\n\s+actuated: \{[^}]*\} \}/g, " }"));
  }
}

/** A compiled plan run fixed-time: every stage's actuation dropped (each stage runs its split). */
export function withoutActuation(plan: IntersectionPlan): IntersectionPlan {
  return { ...plan, stages: plan.stages.map(({ actuation: _actuation, ...stage }) => stage) };
}
