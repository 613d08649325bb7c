import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A corridor of `n` small intersections (x1…xn: main street M and PS, side street S and PM), written to
 * a temp directory, with plans: `base` (30 s cycle, the initial plan), `next` (40 s), `east` (the first
 * five intersections only) and `west` (from the fourth on). No devices: the lamps drive nothing.
 */
export function writeCorridorFixture(n: number): {
  dir: string;
  corridor: string;
  plans: string;
  ids: string[];
} {
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
  for (const id of ids)
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
`,
    );
  const plan = (name: string, cycle: number, members: readonly string[], step: number) =>
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
      - { id: main, groups: [M, PS], splitSeconds: ${cycle / 2 + 1} }
      - { id: side, groups: [S, PM], splitSeconds: ${cycle / 2 - 1} }`,
  )
  .join("\n")}
`,
    );
  plan("base", 30, ids, 3);
  plan("next", 40, ids, 4);
  plan("east", 40, ids.slice(0, 5), 4);
  plan("west", 40, ids.slice(3), 4);
  return { dir, corridor: join(dir, "corridor.yaml"), plans, ids };
}
