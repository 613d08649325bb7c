import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { detectorInputs } from "../../../devices/io-map.js";
import { checkConfigFile } from "../../../gateway/config/check.js";
import { ConfigError, formatIssue, type LocatedIssue } from "../../../gateway/config/errors.js";
import { loadIntersection, loadPlanData, planPartSpec } from "../../../gateway/config/load.js";
import { readYamlFile } from "../../../gateway/config/yaml-file.js";
import { fixtureFiles, writeFixtureFiles } from "../../support/fixture-intersection.js";

/**
 * An intersection file's `detectors:` and a plan stage's `actuated:` (docs/detectors.md), loaded by
 * gateway/config: the core's Detectors with their defaults, the wiring to the modules' inputs, and
 * every problem in one run, each at its line and column.
 */

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const LINK = '{ tcp: "127.0.0.1:1502" }';

/** The test fixture's intersection (M, S, PS, PM on channels 0–9 of one 32-in/32-out module) with `extra` appended. */
function fixtureWith(extra: string): string {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-detectors-"));
  dirs.push(dir);
  writeFixtureFiles(dir, fixtureFiles(LINK, { extra }));
  return join(dir, "x1.yaml");
}

/** The issues a load throws. */
function issuesOf(load: () => unknown): LocatedIssue[] {
  try {
    load();
  } catch (error) {
    if (error instanceof ConfigError) return [...error.issues];
    throw error;
  }
  throw new Error("loaded without a problem");
}

/**
 * `line:column` (1-based) of the first `token` on the first line containing `marker`, comments aside
 * (as in test/unit/config/schedule-load.test.ts).
 */
function at(file: string, marker: string, token: string): string {
  const lines = readFileSync(file, "utf8").split("\n");
  const line = lines.findIndex((l) => l.includes(marker) && !l.startsWith("#"));
  const column = (lines[line] ?? "").indexOf(token);
  if (line < 0 || column < 0) throw new Error(`${file}: no ${token} on a line with ${marker}`);
  return `${line + 1}:${column + 1}`;
}

describe("loading detectors", () => {
  it("gives the core's Detectors (group indices, ms, defaults) and their wiring, in list order", () => {
    const file = fixtureWith(`detectors:
  - { id: S-north, device: io1, input: 16, calls: [S] }
  - id: M-east
    kind: vehicle
    device: io1
    input: 17
    calls: [M]
    extends: []
    delaySeconds: 2.5
    extendSeconds: 1.5
    memory: non-locking
    onFailure: min-recall
    diagnostics: { noActivityMinutes: 0, maxPresenceSeconds: 300, chatterPerMinute: 0 }
    number: 9
  - { id: PB-PM, kind: pedestrian, device: io1, input: 20, calls: [PM] }
`);
    const loaded = loadIntersection(file);
    expect(loaded.intersection.detectors).toEqual([
      {
        id: "S-north",
        kind: "vehicle",
        calls: [1],
        extends: [1],
        delayMs: 0,
        extendMs: 0,
        locking: true,
        failedRecall: "max",
        noActivityMs: 60 * 60_000,
        maxPresenceMs: 180_000,
        chatterPerMinute: 120,
        number: 1,
      },
      {
        id: "M-east",
        kind: "vehicle",
        calls: [0],
        extends: [],
        delayMs: 2500,
        extendMs: 1500,
        locking: false,
        failedRecall: "min",
        noActivityMs: 0,
        maxPresenceMs: 300_000,
        chatterPerMinute: 0,
        number: 9,
      },
      {
        id: "PB-PM",
        kind: "pedestrian",
        calls: [3],
        extends: [],
        delayMs: 0,
        extendMs: 0,
        locking: true,
        failedRecall: "max",
        noActivityMs: 60 * 60_000,
        maxPresenceMs: 60_000,
        chatterPerMinute: 120,
        number: 3,
      },
    ]);
    expect(loaded.detectorWiring).toEqual([
      { detector: 0, deviceId: "io1", input: 16 },
      { detector: 1, deviceId: "io1", input: 17 },
      { detector: 2, deviceId: "io1", input: 20 },
    ]);
  });

  it("a vehicle detector and a push button may share a number; the event log tells the kinds apart", () => {
    const file = fixtureWith(`detectors:
  - { id: S-north, device: io1, input: 16, calls: [S], number: 4 }
  - { id: PB-PM, kind: pedestrian, device: io1, input: 20, calls: [PM], number: 4 }
`);
    expect(loadIntersection(file).intersection.detectors?.map((d) => d.number)).toEqual([4, 4]);
  });

  it("config check counts them", () => {
    const file = fixtureWith(`detectors:
  - { id: S-north, device: io1, input: 16, calls: [S] }
  - { id: PB-PM, kind: pedestrian, device: io1, input: 20, calls: [PM] }
`);
    const report = checkConfigFile(file);
    expect(report.issues.map(formatIssue)).toEqual([]);
    expect(report.checked[0]).toBe(
      "intersection x1: 4 signal groups, 1 I/O modules, 2 detectors, corridor test-corridor, initial plan fast",
    );
  });

  it("no detectors: none in the intersection, no wiring", () => {
    const loaded = loadIntersection(fixtureWith(""));
    expect(loaded.intersection.detectors).toBeUndefined();
    expect(loaded.detectorWiring).toEqual([]);
  });

  it("an input channel counts from the profile's firstInput, as lamp channels from firstCoil", () => {
    const profile = `kind: device-profile
id: offset-inputs
outputs: 16
feedback: { source: discrete-inputs, firstInput: 100, count: 16 }
`;
    const dir = mkdtempSync(join(tmpdir(), "greenwave-detectors-"));
    dirs.push(dir);
    writeFixtureFiles(dir, {
      ...fixtureFiles(LINK, {
        profile: join(dir, "offset-inputs.yaml"),
        extra: `detectors:
  - { id: S-north, device: io1, input: 15, calls: [S] }
  - { id: S-south, device: io1, input: 16, calls: [S] }
`,
      }),
      "offset-inputs.yaml": profile,
    });
    const file = join(dir, "x1.yaml");
    expect(issuesOf(() => loadIntersection(file)).map(formatIssue)).toEqual([
      `${file}:${at(file, "S-south", "16")}: detectors[1].input: input 16 does not exist on io1 (profile offset-inputs reads 16 discrete inputs, channels 0–15): use a free input of io1 (10–14)`,
    ]);
    writeFileSync(file, readFileSync(file, "utf8").replace("  - { id: S-south, device: io1, input: 16, calls: [S] }\n", ""));
    expect(loadIntersection(file).detectorWiring).toEqual([{ detector: 0, deviceId: "io1", input: 15 }]);
  });
});

describe("every problem at once, each located", () => {
  it("detector problems are reported with the groups' and the lamps' problems", () => {
    const file = fixtureWith(`detectors:
  - { id: S-north, device: io1, input: 16, calls: [S, X] }
  - { id: S-north, device: io1, input: 16, calls: [S], number: 1 }
  - { id: PB-S, kind: pedestrian, device: io1, input: 7, calls: [S], extends: [S] }
  - { id: far, device: io9, input: 0, calls: [M] }
`);
    // A lamp wired twice as well: the devices' problems do not hide the detectors'.
    writeFileSync(file, readFileSync(file, "utf8").replace("PM: { dontWalk: 8, walk: 9 }", "PM: { dontWalk: 8, walk: 8 }"));
    const problems = issuesOf(() => loadIntersection(file)).map(formatIssue);
    expect(problems).toEqual(
      expect.arrayContaining([
        `${file}:${at(file, "input: 16, calls: [S, X]", "X")}: detectors[0].calls[1]: detector S-north calls unknown group X (groups: M, S, PS, PM)`,
        `${file}:${at(file, "number: 1", "S-north")}: detectors[1].id: detector S-north is defined twice: give each detector its own id`,
        `${file}:${at(file, "number: 1", "1 }")}: detectors[1].number: vehicle detectors S-north and S-north both have number 1: the event log could not tell them apart; give S-north a number of its own (1–255)`,
        `${file}:${at(file, "number: 1", "16")}: detectors[1].input: input 16 of io1 is already detector S-north's: one input is one detector: use a free input of io1 (9–15, 17–31)`,
        `${file}:${at(file, "PB-S", "S], extends")}: detectors[2].calls[0]: detector PB-S is a pedestrian push button and S is a vehicle group: a button calls pedestrian groups only (pedestrian groups: PS, PM); for a vehicle detector write kind: vehicle`,
        `${file}:${at(file, "PB-S", "[S] }")}: detectors[2].extends: detector PB-S is a pedestrian push button: a button calls its walk, it does not extend a green; remove extends`,
        `${file}:${at(file, "PB-S", "7")}: detectors[2].input: input 7 of io1 is the lamp feedback of PS walk (output channel 7 drives that lamp, and input 7 reads its current): use a free input of io1 (9–15, 17–31)`,
        `${file}:${at(file, "io9", "io9")}: detectors[3].device: detector far is on unknown device io9 (devices: io1)`,
        `${file}:${at(file, "walk: 8", "8 }")}: devices[0].channels.PM.walk: channel 8 of io1 already drives PM red`,
        `${file}:${at(file, "- id: io1", "-")}: devices: PM walk is not wired to any device channel`,
      ]),
    );
    expect(problems).toHaveLength(10);
  });

  it("a detector on a device whose profile fails is not checked further; one on no device of the file is", () => {
    const file = fixtureWith(`detectors:
  - { id: S-north, device: io1, input: 99, calls: [S] }
  - { id: far, device: io9, input: 0, calls: [M] }
`);
    writeFileSync(file, readFileSync(file, "utf8").replace(/profile: .*/, "profile: missing-profile.yaml"));
    const problems = issuesOf(() => loadIntersection(file)).map(formatIssue);
    expect(problems).toEqual([
      expect.stringMatching(/devices\[0\]\.profile: device io1: cannot read its profile .*missing-profile\.yaml/),
      `${file}:${at(file, "io9", "io9")}: detectors[1].device: detector far is on unknown device io9 (devices: io1)`,
    ]);
  });

  it("the schema's limits are errors at their fields", () => {
    const file = fixtureWith(`detectors:
  - id: S-north
    device: io1
    input: 16
    calls: []
    delaySeconds: 61
    memory: latching
    diagnostics: { chatterPerMinute: 2.5, noActivityMinutes: 20000 }
`);
    expect(issuesOf(() => loadIntersection(file)).map(formatIssue)).toEqual([
      `${file}:${at(file, "calls:", "[]")}: detectors[0].calls: must name at least one group`,
      `${file}:${at(file, "delaySeconds", "61")}: detectors[0].delaySeconds: must be at most 60 s`,
      expect.stringMatching(new RegExp(`^${escape(file)}:${at(file, "memory", "latching")}: detectors\\[0\\]\\.memory: .*"locking"\\|"non-locking"`)),
      `${file}:${at(file, "diagnostics", "20000")}: detectors[0].diagnostics.noActivityMinutes: must be at most 10080 minutes (a week)`,
      `${file}:${at(file, "diagnostics", "2.5")}: detectors[0].diagnostics.chatterPerMinute: must be a whole number of on-transitions`,
    ]);
  });
});

describe("config/broken/detector-*.yaml", () => {
  const BROKEN = "config/broken";
  const expected = (file: string) =>
    (
      readFileSync(file, "utf8")
        .split("\n")
        .find((l) => l.startsWith("# expect: ")) ?? ""
    ).slice("# expect: ".length);

  /** Each file, and where its mistake is: the first `token` on the line with `marker`. */
  const WHERE: Record<string, [marker: string, token: string]> = {
    "detector-button-calls-vehicle.yaml": ["PB-S", "S]"],
    "detector-button-extends.yaml": ["PB-PM", "[PM] }"],
    "detector-duplicate-id.yaml": ["input: 17", "S-loop"],
    "detector-duplicate-number.yaml": ["number: 1", "1 }"],
    "detector-input-is-lamp.yaml": ["input: 5", "5,"],
    "detector-input-out-of-range.yaml": ["input: 40", "40"],
    "detector-input-twice.yaml": ["S-south", "16"],
    "detector-no-inputs.yaml": ["device: io2", "io2"],
    "detector-unknown-device.yaml": ["device: io2", "io2"],
    "detector-unknown-group.yaml": ["SS]", "SS"],
    "detector-vehicle-calls-pedestrian.yaml": ["PB-PM", "PM]"],
  };

  it("one for each check", () => {
    const files = readdirSync(BROKEN).filter((f) => f.startsWith("detector-") && f.endsWith(".yaml"));
    expect(files.sort()).toEqual(Object.keys(WHERE).sort());
  });

  it.each(Object.entries(WHERE))("%s: its one mistake, at file:line:column of the field", (name, [marker, token]) => {
    const file = join(BROKEN, name);
    const problems = issuesOf(() => loadIntersection(file)).map(formatIssue);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(`${file}:${at(file, marker, token)}: ${expected(file)}`);
  });

  it("each message says what to do, or what there is to choose from", () => {
    for (const name of Object.keys(WHERE)) {
      const [problem] = issuesOf(() => loadIntersection(join(BROKEN, name))).map(formatIssue);
      expect(problem, name).toMatch(/give |remove |use a free input|put the detector|write kind|\(groups: |\(devices: /);
    }
  });
});

describe("a plan stage's actuated:", () => {
  const plan = (actuated: unknown) => ({
    kind: "plan",
    id: "p",
    version: 1,
    corridor: "c",
    cycleSeconds: 80,
    intersections: {
      x1: {
        offsetSeconds: 0,
        coordinatedStage: "main",
        correction: { mode: "dwell", maxDwellPercent: 25 },
        stages: [
          { id: "main", groups: ["M", "PS"], splitSeconds: 46 },
          { id: "side", groups: ["S", "PM"], splitSeconds: 34, actuated },
        ],
      },
    },
  });

  it("becomes StageSpec.actuated in ms, recall none and no pedestrian recall by default", () => {
    const loaded = loadPlanData("p", plan({ minGreenSeconds: 7, passageSeconds: 2.5, maxGreenSeconds: 25 }));
    const spec = planPartSpec(loaded.raw.intersections.x1 as NonNullable<(typeof loaded.raw.intersections)[string]>);
    expect(spec.stages[0]).not.toHaveProperty("actuated");
    expect(spec.stages[1]?.actuated).toEqual({
      minGreenMs: 7000,
      passageMs: 2500,
      maxGreenMs: 25_000,
      recall: "none",
      pedestrianRecall: false,
    });
  });

  it("limits and unknown keys are errors at their fields", () => {
    const problems = issuesOf(() =>
      loadPlanData("p", plan({ minGreenSeconds: 0, passageSeconds: 31, maxGreenSeconds: 256, recall: "soft", gap: 3 })),
    ).map((i) => `${i.path.join(".")}: ${i.message}`);
    expect(problems).toEqual(
      expect.arrayContaining([
        "intersections.x1.stages.1.actuated.minGreenSeconds: must be at least 1 s",
        "intersections.x1.stages.1.actuated.passageSeconds: must be at most 30 s",
        "intersections.x1.stages.1.actuated.maxGreenSeconds: must be at most 255 s",
        expect.stringMatching(/^intersections\.x1\.stages\.1\.actuated\.recall: /),
        expect.stringMatching(/^intersections\.x1\.stages\.1\.actuated: .*gap/),
      ]),
    );
  });

  it("the compile checks' paths (stages[s].actuated.field, relative to the part) locate in the plan file", () => {
    const file = "config/broken/actuated-passage-over-max.yaml";
    const yaml = readYamlFile(file);
    const [field] = yaml.locate([
      { path: ["intersections", "elm", "stages", 1, "actuated", "passageSeconds"], message: "m" },
    ]);
    expect(`${field?.line}:${field?.column}`).toBe(at(file, "passageSeconds: 30", "30"));
    const [whole] = yaml.locate([{ path: ["intersections", "elm", "stages", 1, "actuated"], message: "m" }]);
    expect(`${whole?.line}:${whole?.column}`).toBe(at(file, "actuated:", "{"));
  });
});

describe("detectorInputs", () => {
  it("reads each detector's input from its module's feedback, null where the module gave none", () => {
    const layouts = [{ deviceId: "io1" }, { deviceId: "io2" }] as unknown as Parameters<typeof detectorInputs>[2];
    const wiring = [
      { detector: 0, deviceId: "io1", input: 16 },
      { detector: 1, deviceId: "io2", input: 3 },
      { detector: 2, deviceId: "io1", input: 17 },
    ];
    const io1 = Array.from({ length: 32 }, (_, n) => n === 16);
    expect(detectorInputs(3, wiring, layouts, [io1, null])).toEqual([true, null, false]);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
