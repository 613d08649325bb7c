import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { planBands } from "../../../gateway/config/check-plan.js";
import { ConfigError, formatIssue } from "../../../gateway/config/errors.js";
import { makePlansFixedTime } from "../../support/fixture-intersection.js";
import { loadCorridorProgression } from "../../../gateway/config/progression-input.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A copy of the example configuration, to change one thing in. */
function exampleCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-progression-"));
  dirs.push(dir);
  for (const part of ["corridor.yaml", "intersections", "plans", "devices"]) {
    cpSync(join("config", part), join(dir, part), { recursive: true });
  }
  // The edits below are written against the fixed-time form of the plans.
  makePlansFixedTime(join(dir, "plans"));
  return dir;
}

function edit(file: string, from: string | RegExp, to: string): void {
  const text = readFileSync(file, "utf8");
  const changed = text.replace(from, to);
  expect(changed, `${file} has ${String(from)}`).not.toBe(text);
  writeFileSync(file, changed);
}

function problems(work: () => unknown): string[] {
  try {
    work();
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map(formatIssue);
    throw error;
  }
  throw new Error("no ConfigError");
}

describe("the progression input of a corridor and a plan", () => {
  it("positions are the cumulative distanceMeters, the speed the corridor's, greens from the compiled parts", () => {
    const p = loadCorridorProgression("config/corridor.yaml", "am-peak");
    expect(p.input.cycleMs).toBe(100_000);
    expect(p.speedKmh).toBe(50);
    expect(p.input.speedMps).toBeCloseTo(50 / 3.6, 12);
    expect(p.input.sites.map((s) => [s.id, s.positionM])).toEqual([
      ["elm", 0],
      ["oak", 350],
      ["pine", 770],
      ["cedar", 1070],
    ]);
    // pine: main 62 s from its offset 55 s, less M's yellow 4 s and red clearance 2.5 s: across the cycle's end.
    expect(p.sites[2]).toMatchObject({
      throughGroup: "M",
      coordinatedStage: "main",
      green: [{ startMs: 55_000, endMs: 11_500 }],
    });
    // A plan file works as well as a plan id; a speed may be given instead of the corridor's.
    const byFile = loadCorridorProgression("config/corridor.yaml", "config/plans/am-peak.yaml", {
      speedKmh: 40,
    });
    expect(byFile.input.sites).toEqual(p.input.sites);
    expect(byFile.speedKmh).toBe(40);
  });

  it("the example plans' figures (README): bandwidths, efficiency and the best offsets", () => {
    const figures = ["am-peak", "off-peak", "pm-peak"].map((id) => planBands("config/corridor.yaml", id));
    const s = (ms: number) => Math.round(ms / 100) / 10;
    expect(
      figures.map((f) => [
        f.plan,
        s(f.forward.widthMs),
        s(f.reverse.widthMs),
        Math.round(f.efficiency * 1000) / 10,
      ]),
    ).toEqual([
      ["am-peak", 43.8, 0, 21.9],
      ["off-peak", 20.8, 0, 13],
      ["pm-peak", 0, 41.8, 20.9],
    ]);
    for (const f of figures) {
      expect(f.best.exact).toBe(true);
      expect(f.best.forward.widthMs + f.best.reverse.widthMs).toBeGreaterThanOrEqual(
        f.forward.widthMs + f.reverse.widthMs,
      );
      expect(f.best.offsets[0]?.changeMs).toBe(0);
    }
    expect(figures[0]?.best.offsets.map((o) => [o.id, o.offsetMs, o.changeMs])).toEqual([
      ["elm", 0, 0],
      ["oak", 25_000, 0],
      ["pine", 55_000, 0],
      ["cedar", 73_000, -4000],
    ]);
  });

  it("a corridor without a design speed: located at the corridor file", () => {
    const dir = exampleCopy();
    edit(join(dir, "corridor.yaml"), "progressionSpeedKmh: 50\n", "");
    const found = problems(() => loadCorridorProgression(join(dir, "corridor.yaml"), "am-peak"));
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/corridor\.yaml.*: corridor main-street has no progressionSpeedKmh/);
  });

  it("every problem at once: a part that does not compile, and a coordinated stage with no vehicle group", () => {
    const dir = exampleCopy();
    const plan = join(dir, "plans", "am-peak.yaml");
    // oak: splits no longer sum to the cycle; elm: coordinated on a stage of pedestrians only.
    edit(
      plan,
      "      - { id: main, groups: [M, PS], splitSeconds: 50 }",
      "      - { id: main, groups: [M, PS], splitSeconds: 51 }",
    );
    edit(
      plan,
      "  elm:\n    offsetSeconds: 0\n    offsetReference: start-of-green\n    coordinatedStage: main\n",
      "  elm:\n    offsetSeconds: 0\n    offsetReference: start-of-green\n    coordinatedStage: peds\n",
    );
    edit(
      plan,
      "      - { id: side, groups: [S, PM], splitSeconds: 40 }\n  oak:",
      "      - { id: side, groups: [S], splitSeconds: 16 }\n      - { id: peds, groups: [PM], splitSeconds: 24 }\n  oak:",
    );
    const found = problems(() => loadCorridorProgression(join(dir, "corridor.yaml"), "am-peak"));
    expect(
      found.some((f) => /am-peak\.yaml:\d+:\d+: intersections\.oak\.stages: .*splits sum to 101 s/.test(f)),
    ).toBe(true);
    expect(
      found.some((f) =>
        /am-peak\.yaml:\d+:\d+: intersections\.elm\.coordinatedStage: .*serves no vehicle group/.test(f),
      ),
    ).toBe(true);
  });
});
