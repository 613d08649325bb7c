import { beforeAll, describe, expect, it } from "vitest";
import { hasTool } from "../support/tools.js";
import { buildOnce } from "./cli.js";
import { cli } from "./processes.js";

beforeAll(() => buildOnce(), 180_000);

const haveSumo =
  hasTool("netconvert", "the sim traffic command's tests", "sumo") &&
  hasTool("sumo", "the sim traffic command's tests", "sumo");

describe.runIf(haveSumo)("greenwave sim traffic, as a user runs it", () => {
  it("prints the figures per direction and intersection (--json), exit 0", () => {
    const run = cli([
      ...["sim", "traffic", "--plan", "am-peak", "--demand", "config/demand/am-peak.yaml"],
      ...["--duration", "120", "--warmup", "120", "--seed", "2", "--json"],
    ]);
    expect(run.status, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as {
      plan: { id: string };
      directions: Record<string, { vehicles: number; stopsPerVehicleDownstream: number }>;
      intersections: { id: string }[];
      safety: { faults: string[]; collisions: number };
    };
    expect(report.plan.id).toBe("am-peak");
    expect(Object.keys(report.directions)).toEqual(["eastbound", "westbound"]);
    expect(report.intersections.map((i) => i.id)).toEqual(["elm", "oak", "pine", "cedar"]);
    expect(report.safety).toMatchObject({ faults: [], collisions: 0 });
  }, 60_000);

  it("a broken demand file is a located error, exit 1, no stack trace", () => {
    const run = cli([
      "sim",
      "traffic",
      "--plan",
      "am-peak",
      "--demand",
      "config/broken/demand-shares-sum.yaml",
    ]);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/demand-shares-sum\.yaml:\d+:\d+: /);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);
});
