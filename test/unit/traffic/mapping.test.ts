import { describe, expect, it } from "vitest";
import {
  defaultTrafficGroups,
  movementsConflict,
  type TrafficFile,
  trafficLayout,
  VEHICLE_MOVEMENTS,
  yieldingMovement,
} from "../../../gateway/config/traffic-schema.js";
import { loadIntersection } from "../../../gateway/config/load.js";

const vehicle = (id: string) => ({ id, kind: "vehicle" as const });
const pedestrian = (id: string) => ({ id, kind: "pedestrian" as const });
const elmGroups = [vehicle("M"), vehicle("S"), pedestrian("PS"), pedestrian("PM")];
/** M with PS, S with PM: the example corridor's permissive matrix. */
const elmPermissive = [
  [false, false, true, false],
  [false, false, false, true],
  [true, false, false, false],
  [false, true, false, false],
];

describe("the geometry of a four-leg junction", () => {
  it.each([
    ["eastbound-through", "westbound-through", false],
    ["eastbound-through", "northbound-through", true],
    ["eastbound-left", "westbound-through", true],
    ["eastbound-left", "westbound-left", false],
    ["eastbound-left", "westbound-right", true], // both leave northwards
    ["eastbound-right", "westbound-through", false],
    ["eastbound-right", "southbound-through", true], // both leave southwards
    ["eastbound-right", "northbound-through", false],
    ["northbound-left", "southbound-left", false],
    ["eastbound-through", "eastbound-left", false], // one approach: they part
    ["eastbound-right", "crossing-south", true],
    ["eastbound-through", "crossing-south", false],
    ["eastbound-through", "crossing-west", true],
    ["crossing-west", "crossing-north", false],
  ])("%s and %s conflict: %s", (a, b, conflict) => {
    expect(movementsConflict(a, b)).toBe(conflict);
    expect(movementsConflict(b, a)).toBe(conflict);
  });

  it("who yields: vehicles to pedestrians, the side street to the main street, a left turn to oncoming traffic", () => {
    expect(yieldingMovement("eastbound-right", "crossing-south")).toBe("eastbound-right");
    expect(yieldingMovement("crossing-south", "eastbound-right")).toBe("eastbound-right");
    expect(yieldingMovement("northbound-through", "eastbound-left")).toBe("northbound-through");
    expect(yieldingMovement("westbound-through", "eastbound-left")).toBe("eastbound-left");
    expect(yieldingMovement("northbound-left", "southbound-right")).toBe("northbound-left");
    expect(yieldingMovement("eastbound-right", "eastbound-through")).toBe("eastbound-right");
  });
});

describe("the mapping from groups to movements", () => {
  it("defaults by the groups' names serve every movement once, for every example intersection", () => {
    for (const name of ["elm", "oak", "pine", "cedar"]) {
      const loaded = loadIntersection(`config/intersections/${name}.yaml`);
      const { layout, issues } = trafficLayout(undefined, loaded.raw.groups, loaded.intersection.permissive);
      expect(issues, name).toEqual([]);
      for (const movement of VEHICLE_MOVEMENTS)
        expect(layout.movements.has(movement), `${name} ${movement}`).toBe(true);
      // The explicit blocks written into the files say what the defaults say.
      const explicit = trafficLayout(
        loaded.raw.traffic,
        loaded.raw.groups,
        loaded.intersection.permissive,
      ).layout;
      expect(new Map([...explicit.movements].sort()), name).toEqual(new Map([...layout.movements].sort()));
      expect(explicit.lanes, name).toEqual(layout.lanes);
    }
  });

  it("defaults: M's lefts are permissive where there is no ML, protected by ML where there is", () => {
    expect(defaultTrafficGroups(elmGroups).M?.permissive).toContain("eastbound-left");
    const oak = defaultTrafficGroups([vehicle("ML"), ...elmGroups]);
    expect(oak.M?.permissive).not.toContain("eastbound-left");
    expect(oak.ML?.protected).toEqual(["eastbound-left", "westbound-left"]);
    expect(oak.PS?.crossings).toEqual(["north", "south"]);
  });

  const defaults = defaultTrafficGroups(elmGroups);
  const check = (traffic: TrafficFile, permissive = elmPermissive) =>
    trafficLayout(traffic, elmGroups, permissive).issues.map((i) => `${i.path.join(".")}: ${i.message}`);

  it("an unknown group is an error at its key", () => {
    expect(check({ groups: { ...defaults, X: { protected: [], permissive: [], crossings: [] } } })).toEqual([
      "traffic.groups.X: traffic names unknown group X (groups: M, S, PS, PM)",
    ]);
  });

  it("a movement served by two groups, or by none, is an error", () => {
    const twice = check({
      groups: {
        ...defaults,
        S: {
          ...(defaults.S as NonNullable<typeof defaults.S>),
          protected: ["northbound-through", "southbound-through", "eastbound-through"],
        },
      },
    });
    expect(twice.join("\n")).toContain(
      "traffic.groups.S.protected.2: movement eastbound-through is served by two groups, M and S",
    );
    const { M: _m, ...withoutM } = defaults;
    expect(check({ groups: withoutM }).join("\n")).toContain(
      "movement eastbound-through is served by no group",
    );
  });

  it("a vehicle group serving a crossing, or a pedestrian group serving a movement, is an error", () => {
    const issues = check({
      groups: { ...defaults, PS: { protected: ["eastbound-right"], permissive: [], crossings: [] } },
    });
    expect(issues.join("\n")).toContain("PS is a pedestrian group");
  });

  it("two conflicting movements green together: the one that yields must be permissive", () => {
    const m = defaults.M as NonNullable<typeof defaults.M>;
    const protectedLeft = check({
      groups: {
        ...defaults,
        M: {
          ...m,
          protected: [...m.protected, "eastbound-left"],
          permissive: m.permissive.filter((x) => x !== "eastbound-left"),
        },
      },
    });
    expect(protectedLeft.join("\n")).toContain(
      "movement eastbound-left conflicts with westbound-through (both served by M)",
    );
    // A right turn that would not yield to the crossing walking beside it (PS is permissive with M).
    const protectedRight = check({
      groups: {
        ...defaults,
        M: {
          ...m,
          protected: [...m.protected, "eastbound-right"],
          permissive: m.permissive.filter((x) => x !== "eastbound-right"),
        },
      },
    });
    expect(protectedRight.join("\n")).toContain(
      "eastbound-right conflicts with crossing-south (served by M and PS, which are permissive)",
    );
    // The same right turn is fine where PS never walks beside M.
    const apart = elmPermissive.map((row) => row.map(() => false));
    expect(
      check(
        {
          groups: {
            ...defaults,
            M: {
              ...m,
              protected: [...m.protected, "eastbound-right"],
              permissive: m.permissive.filter((x) => x !== "eastbound-right"),
            },
          },
        },
        apart,
      ),
    ).toEqual([]);
  });

  it("two groups that may be green together must not carry crossing movements that nobody yields", () => {
    const together = elmPermissive.map((row) => [...row]);
    (together[0] as boolean[])[1] = true;
    (together[1] as boolean[])[0] = true;
    expect(check({ groups: defaults }, together).join("\n")).toContain(
      "movement northbound-through conflicts with eastbound-through (served by M and S, which are permissive)",
    );
  });

  it("lanes default to 2 through lanes on the main street and 1 on the side street, plus a left lane with ML/SL", () => {
    expect(trafficLayout(undefined, elmGroups, elmPermissive).layout.lanes).toEqual({
      eastbound: { through: 2, left: 0 },
      westbound: { through: 2, left: 0 },
      northbound: { through: 1, left: 0 },
      southbound: { through: 1, left: 0 },
    });
    const withLefts = [vehicle("ML"), vehicle("SL"), ...elmGroups];
    const lanes = trafficLayout(
      undefined,
      withLefts,
      withLefts.map(() => withLefts.map(() => false)),
    ).layout.lanes;
    expect(lanes.eastbound).toEqual({ through: 2, left: 1 });
    expect(lanes.northbound).toEqual({ through: 1, left: 1 });
  });
});

describe("an intersection without a traffic block", () => {
  it("loads whatever its groups are called: a gateway never depends on the traffic simulation", async () => {
    const { mkdtempSync, readFileSync, writeFileSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join, resolve } = await import("node:path");
    const dir = mkdtempSync(join(tmpdir(), "greenwave-no-traffic-"));
    try {
      // elm's file with its groups renamed (A, B, C, D: no default applies) and no traffic block.
      const text = readFileSync("config/intersections/elm.yaml", "utf8")
        .replace(/^traffic:[\s\S]*?(?=^\S)/m, "")
        .replace(/^phases:.*$/m, "")
        .replace(/\bPS\b/g, "C")
        .replace(/\bPM\b/g, "D")
        .replace(/\bM\b/g, "A")
        .replace(/\bS\b/g, "B")
        .replace("corridor: ../corridor.yaml", `corridor: ${resolve("config/corridor.yaml")}`)
        .replace("profile: ../devices/", `profile: ${resolve("config/devices")}/`);
      expect(text).not.toMatch(/^traffic:/m);
      const file = join(dir, "elm.yaml");
      writeFileSync(file, text);
      const loaded = loadIntersection(file);
      expect(loaded.intersection.groups.map((g) => g.id)).toEqual(["A", "B", "C", "D"]);
      // Only the simulation needs the mapping, and says so at the file's lines.
      expect(
        trafficLayout(undefined, loaded.raw.groups, loaded.intersection.permissive).issues.length,
      ).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
