import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, formatIssue } from "../../../gateway/config/errors.js";
import { loadCorridor, loadIntersection } from "../../../gateway/config/load.js";
import { loadDemand } from "../../../gateway/config/load-demand.js";
import { trafficLayout } from "../../../gateway/config/traffic-schema.js";
import { corridorFlows, directionOfVehicle } from "../../../simulators/traffic/network/demand-flows.js";
import { corridorGeometry } from "../../../simulators/traffic/network/geometry.js";

const corridor = loadCorridor("config/corridor.yaml");
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function demandFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-demand-"));
  dirs.push(dir);
  const file = join(dir, "demand.yaml");
  writeFileSync(file, text);
  return file;
}

function problems(text: string): string[] {
  try {
    loadDemand(demandFile(text), corridor);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.issues.map((i) => formatIssue(i).replace(/^.*demand\.yaml/, "demand.yaml"));
  }
  return [];
}

const HEADER = "kind: demand\nid: test\ncorridor: main-street\n";

describe("demand files", () => {
  it("loads the examples, every intersection and approach filled in", () => {
    for (const file of ["config/demand/am-peak.yaml", "config/demand/off-peak.yaml"]) {
      const demand = loadDemand(file, corridor);
      expect([...demand.turning.keys()]).toEqual(["elm", "oak", "pine", "cedar"]);
      for (const shares of demand.turning.values())
        for (const s of Object.values(shares)) expect(s.left + s.through + s.right).toBeCloseTo(1, 9);
    }
    const am = loadDemand("config/demand/am-peak.yaml", corridor);
    expect(am.mainStreet).toEqual({ eastbound: 900, westbound: 400 });
  });

  it("fills what a file leaves out: no side-street traffic, the default turning shares", () => {
    const demand = loadDemand(
      demandFile(`${HEADER}mainStreet: { eastbound: 100, westbound: 0 }\n`),
      corridor,
    );
    expect(demand.sideStreets.get("oak")).toEqual({ northbound: 0, southbound: 0 });
    expect(demand.turning.get("oak")?.eastbound).toEqual({ left: 0.1, through: 0.8, right: 0.1 });
    expect(demand.turning.get("oak")?.northbound).toEqual({ left: 0.25, through: 0.5, right: 0.25 });
  });

  it("a negative flow is an error at its line and column", () => {
    expect(problems(`${HEADER}mainStreet:\n  eastbound: -5\n  westbound: 0\n`)).toEqual([
      "demand.yaml:5:14: mainStreet.eastbound: must be at least 0 vehicles per hour: a flow cannot be negative",
    ]);
  });

  it("turning shares that do not sum to 1 are an error at their approach", () => {
    const text = `${HEADER}mainStreet: { eastbound: 1, westbound: 1 }\nturning:\n  pine:\n    westbound: { left: 0.3, through: 0.3, right: 0.3 }\n`;
    expect(problems(text)).toEqual([
      "demand.yaml:7:16: turning.pine.westbound: turning shares of pine westbound sum to 0.9, not 1 (left 0.3 + through 0.3 + right 0.3)",
    ]);
  });

  it("an intersection the corridor does not have, or another corridor, is an error", () => {
    const text = `kind: demand\nid: test\ncorridor: elsewhere\nmainStreet: { eastbound: 1, westbound: 1 }\nsideStreets:\n  maple: { northbound: 10 }\nturning:\n  maple: {}\n`;
    const found = problems(text);
    expect(found).toHaveLength(3);
    expect(found[0]).toMatch(
      /^demand\.yaml:3:11: corridor: demand test is for corridor elsewhere, not main-street/,
    );
    expect(found[1]).toBe(
      "demand.yaml:6:10: sideStreets.maple: corridor main-street has no intersection maple (it has elm, oak, pine, cedar)",
    );
    expect(found[2]).toMatch(
      /^demand\.yaml:8:10: turning\.maple: corridor main-street has no intersection maple/,
    );
  });
});

describe("origin–destination flows", () => {
  const ids = ["elm", "oak", "pine", "cedar"];
  const geometry = corridorGeometry(
    ids.map((id, k) => {
      const loaded = loadIntersection(`config/intersections/${id}.yaml`);
      const { layout } = trafficLayout(loaded.raw.traffic, loaded.raw.groups, loaded.intersection.permissive);
      return { id, distanceM: corridor.raw.intersections[k]?.distanceMeters ?? 0, layout };
    }),
    50,
  );
  const demand = loadDemand("config/demand/am-peak.yaml", corridor);
  const flows = corridorFlows(ids, geometry, demand);

  it("conserve the vehicles: every entry's flows add up to what enters there", () => {
    const from = (origin: string) =>
      flows.filter((f) => f.origin === origin).reduce((sum, f) => sum + f.vehiclesPerHour, 0);
    expect(from("W")).toBeCloseTo(900, 6);
    expect(from("E")).toBeCloseTo(400, 6);
    expect(from("oak-S")).toBeCloseTo(150, 6);
    expect(from("cedar-N")).toBeCloseTo(250, 6);
  });

  it("corridor-long eastbound is the product of the through shares", () => {
    const eastbound = flows.find((f) => f.id === "W~E");
    expect(eastbound?.vehiclesPerHour).toBeCloseTo(900 * 0.9 * 0.9 * 0.9 * 0.8, 6);
    expect(eastbound?.edges).toEqual(["elm.eb", "oak.eb", "pine.eb", "cedar.eb", "east.exit"]);
    expect(flows.find((f) => f.id === "E~W")?.edges).toEqual([
      "cedar.wb",
      "pine.wb",
      "oak.wb",
      "elm.wb",
      "west.exit",
    ]);
    expect(flows.find((f) => f.id === "oak-S~pine-N")?.edges).toEqual(["oak.nb", "pine.eb", "pine.nb-out"]);
  });

  it("are the same every time (ids unique, in a fixed order)", () => {
    expect(corridorFlows(ids, geometry, demand)).toEqual(flows);
    expect(new Set(flows.map((f) => f.id)).size).toBe(flows.length);
  });
});

describe("directionOf", () => {
  it.each([
    ["W~E.0", "eastbound"],
    ["W~E.1234", "eastbound"],
    ["E~W.7", "westbound"],
    ["W~oak-N.3", null],
    ["elm-S~E.0", null],
    ["oak-N~W.2", null],
    ["E~E.1", null],
    ["something-else", null],
    ["", null],
  ])("%s is %s", (vehicleId, direction) => {
    expect(directionOfVehicle(vehicleId)).toBe(direction);
  });
});
