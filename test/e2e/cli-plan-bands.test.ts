import { spawnSync } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import { buildOnce, CLI } from "./cli.js";

beforeAll(buildOnce, 180_000);

const greenwave = (...args: string[]) =>
  spawnSync("node", [CLI, ...args], { encoding: "utf8", timeout: 20_000 });

interface Figures {
  plans: {
    plan: string;
    cycleMs: number;
    speedKmh: number;
    sites: { id: string; green: { startMs: number; endMs: number }[] }[];
    forward: { widthMs: number; starts: { id: string; atMs: number }[] };
    reverse: { widthMs: number; starts: { id: string; atMs: number }[] };
    efficiency: number;
    best: {
      objective: string;
      method: string;
      exact: boolean;
      offsets: { id: string; offsetMs: number; changeMs: number }[];
      forward: { widthMs: number };
      reverse: { widthMs: number };
    };
  }[];
}

describe("greenwave plan check --corridor: the green wave of a plan", () => {
  it("prints each plan's bandwidths, where they start, the efficiency and the best offsets", () => {
    const run = greenwave(
      "plan",
      "check",
      "--corridor",
      "config/corridor.yaml",
      "am-peak",
      "off-peak",
      "pm-peak",
    );
    expect(run.status, run.stderr).toBe(0);
    const out = run.stdout;
    expect(out).toContain(
      "plan am-peak v1, corridor main-street: cycle 100 s, design speed 50 km/h (13.89 m/s)",
    );
    expect(out).toMatch(/^ {2}oak +350 m +25 s +M +25–69 s +25\.2 s +—$/m);
    expect(out).toContain("  forward (elm → cedar): bandwidth 43.8 s\n");
    expect(out).toContain(
      "  reverse (cedar → elm): bandwidth 0 s (no vehicle at 50 km/h passes every green)\n",
    );
    expect(out).toContain("  efficiency (b1 + b2) / 2C: 21.9 %\n");
    expect(out).toContain(
      "best offsets (exhaustive search, every combination at 1 s; maximising b1 + b2, ties to the least total offset change",
    );
    expect(out).toContain("    elm 0 s (±0 s), oak 25 s (±0 s), pine 55 s (±0 s), cedar 73 s (−4 s)\n");
    expect(out).toContain("  reverse (cedar → elm): bandwidth 41.8 s\n");
    expect(out.match(/^plan /gm)).toHaveLength(3);
  });

  it("--json: the same figures as data", () => {
    const run = greenwave(
      "plan",
      "check",
      "--corridor",
      "config/corridor.yaml",
      "--json",
      "config/plans/pm-peak.yaml",
    );
    expect(run.status, run.stderr).toBe(0);
    const figures = JSON.parse(run.stdout) as Figures;
    const [pm] = figures.plans;
    expect(pm?.plan).toBe("pm-peak");
    expect(pm?.sites.map((s) => s.id)).toEqual(["elm", "oak", "pine", "cedar"]);
    expect(pm?.forward.widthMs).toBe(0);
    expect(pm?.reverse.widthMs).toBeCloseTo(41_760, 3);
    expect(pm?.reverse.starts.map((s) => s.id)).toEqual(["elm", "oak", "pine", "cedar"]);
    expect(pm?.efficiency).toBeCloseTo(0.2088, 6);
    expect(pm?.best.exact).toBe(true);
    expect((pm?.best.forward.widthMs ?? 0) + (pm?.best.reverse.widthMs ?? 0)).toBeGreaterThanOrEqual(41_760);
    expect(pm?.best.offsets[0]).toEqual({ id: "elm", offsetMs: 77_000, changeMs: 0 });
  });

  it("--speed-kmh: the bands at another design speed", () => {
    const run = greenwave(
      "plan",
      "check",
      "--corridor",
      "config/corridor.yaml",
      "--speed-kmh",
      "40",
      "off-peak",
    );
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain("design speed 40 km/h (11.11 m/s)");
    expect(run.stdout).toContain("  forward (elm → cedar): bandwidth 33.5 s\n");
  });

  it("a broken plan: every problem, file:line:column, exit 1, no stack trace", () => {
    const run = greenwave(
      "plan",
      "check",
      "--corridor",
      "config/corridor.yaml",
      "config/broken/broken-splits.yaml",
    );
    expect(run.status).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toMatch(
      /^config\/broken\/broken-splits\.yaml:\d+:\d+: intersections\.elm\.stages: plan broken-splits, intersection elm: splits sum to 95 s but the cycle is 90 s$/m,
    );
    expect(run.stderr).toMatch(/has no part for intersection oak$/m);
    expect(run.stderr).not.toMatch(/^\s+at /m);
    const missing = greenwave("plan", "check", "--corridor", "config/nope.yaml", "am-peak");
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain("config/nope.yaml: cannot read: no such file");
  });

  it("the command line: --intersection still works; one of the two is needed, not both", () => {
    const old = greenwave("plan", "check", "--intersection", "config/intersections/oak.yaml", "am-peak");
    expect(old.status, old.stderr).toBe(0);
    expect(old.stdout).toContain("stage side: groups S, PM, split 38 s (minimum 26 s)");
    const neither = greenwave("plan", "check", "am-peak");
    expect(neither.status).toBe(2);
    expect(neither.stderr).toContain("plan check needs --intersection FILE or --corridor FILE");
    const both = greenwave(
      "plan",
      "check",
      "--corridor",
      "config/corridor.yaml",
      "--intersection",
      "config/intersections/oak.yaml",
      "am-peak",
    );
    expect(both.status).toBe(2);
    const speed = greenwave(
      "plan",
      "check",
      "--corridor",
      "config/corridor.yaml",
      "--speed-kmh",
      "fast",
      "am-peak",
    );
    expect(speed.status).toBe(2);
    expect(speed.stderr).toContain("--speed-kmh must be a speed from 10 to 120 km/h");
  });
});
