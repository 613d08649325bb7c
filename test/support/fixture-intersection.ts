import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

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

export function writeFixture(
  link: string,
  extra = "",
): { dir: string; intersection: string; dataDir: string } {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-e2e-"));
  mkdirSync(join(dir, "plans"));
  const profile = resolve("config/devices/generic-do32-di32.yaml");
  writeFileSync(
    join(dir, "corridor.yaml"),
    `kind: corridor
id: test-corridor
name: Test corridor
timeReference: { dailySync: "00:00:00" }
intersections:
  - { id: x1, file: x1.yaml, distanceMeters: 0 }
`,
  );
  writeFileSync(
    join(dir, "plans", "fast.yaml"),
    `kind: plan
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
  );
  writeFileSync(
    join(dir, "x1.yaml"),
    `kind: intersection
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
${extra}`,
  );
  return { dir, intersection: join(dir, "x1.yaml"), dataDir: join(dir, "data") };
}
