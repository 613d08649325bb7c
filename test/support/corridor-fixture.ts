import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/**
 * A corridor of `n` small intersections (x1…xn: main street M and PS, side street S and PM), written to
 * a temp directory, with plans: `base` (30 s cycle, the initial plan), `next` (40 s), `east` (the first
 * five intersections only), `west` (from the fourth on) and `shifted` (30 s, main green 14 s instead of
 * 12 s, offsets 5 s apart instead of 3). Devices (a generic DO/DI module over TCP) where
 * `devicePort` gives a port; otherwise none, and the lamps drive nothing.
 */
export function writeCorridorFixture(
  n: number,
  options: { devicePort?: (index: number) => number | null } = {},
): { dir: string; corridor: string; plans: string; ids: string[] } {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-corridor-"));
  const plans = join(dir, "plans");
  mkdirSync(plans);
  const ids = Array.from({ length: n }, (_, i) => `x${i + 1}`);
  writeFileSync(
    join(dir, "corridor.yaml"),
    `kind: corridor
id: test-corridor
name: Test corridor of ${n}
timeReference: { dailySync: "00:00:00" }
intersections:
${ids.map((id, i) => `  - { id: ${id}, file: ${id}.yaml, distanceMeters: ${i * 200} }`).join("\n")}
`,
  );
  const profile = resolve("config/devices/generic-do32-di32.yaml");
  const device = (i: number) => {
    const port = options.devicePort?.(i) ?? null;
    return port === null
      ? ""
      : `devices:
  - id: io1
    profile: ${profile}
    link: { tcp: "127.0.0.1:${port}" }
    timeoutMs: 200
    retries: 1
    faultWindowMs: 2000
    watchdogMs: 2000
    channels:
      M: { red: 0, yellow: 1, green: 2 }
      S: { red: 3, yellow: 4, green: 5 }
      PS: { dontWalk: 6, walk: 7 }
      PM: { dontWalk: 8, walk: 9 }
`;
  };
  for (const [i, id] of ids.entries())
    writeFileSync(
      join(dir, `${id}.yaml`),
      `kind: intersection
id: ${id}
name: Test St & ${id}
corridor: corridor.yaml
initialPlan: base
groups:
  - { id: M, kind: vehicle, minGreenSeconds: 5, yellowSeconds: 3, redClearanceSeconds: 1 }
  - { id: S, kind: vehicle, minGreenSeconds: 5, yellowSeconds: 3, redClearanceSeconds: 1 }
  - { id: PS, kind: pedestrian, walkSeconds: 7, pedestrianClearanceSeconds: 5 }
  - { id: PM, kind: pedestrian, walkSeconds: 7, pedestrianClearanceSeconds: 5 }
permissive:
  M: [PS]
  S: [PM]
startup: { flashSeconds: 3, allRedSeconds: 2 }
${device(i)}`,
    );
  const plan = (
    name: string,
    cycle: number,
    members: readonly string[],
    step: number,
    mainSplit = cycle / 2 + 1,
  ) =>
    writeFileSync(
      join(plans, `${name}.yaml`),
      `kind: plan
id: ${name}
version: 1
corridor: test-corridor
cycleSeconds: ${cycle}
intersections:
${members
  .map(
    (id, i) => `  ${id}:
    offsetSeconds: ${(i * step) % cycle}
    coordinatedStage: main
    correction: { mode: shortway, maxLengthenPercent: 20, maxShortenPercent: 15 }
    stages:
      - { id: main, groups: [M, PS], splitSeconds: ${mainSplit} }
      - { id: side, groups: [S, PM], splitSeconds: ${cycle - mainSplit} }`,
  )
  .join("\n")}
`,
    );
  plan("base", 30, ids, 3);
  plan("next", 40, ids, 4);
  plan("east", 40, ids.slice(0, 5), 4);
  plan("west", 40, ids.slice(3), 4);
  // Same cycle as base, a longer main street green and a new green wave (offsets 5 s apart, not 3).
  plan("shifted", 30, ids, 5, 18);
  return { dir, corridor: join(dir, "corridor.yaml"), plans, ids };
}
