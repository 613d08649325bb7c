import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  compileIntersectionPlan,
  type IntersectionSetup,
  loadCorridor,
  loadIntersectionSetup,
  loadPlan,
} from "../../../gateway/config/load.js";
import { recompilePlan } from "../../../gateway/config/recompile-plan.js";
import { type ReloadVerdict, reloadVerdict } from "../../../gateway/config/reload-diff.js";
import { fixtureFiles, writeFixtureFiles } from "../../support/fixture-intersection.js";

/**
 * The rules of a SIGHUP reload (gateway/config/reload-diff.ts): what a running gateway takes at a
 * cycle boundary, what it refuses with a reason (a restart takes it), and what is no change at all;
 * and the plan in force compiled again for the reloaded file (gateway/config/recompile-plan.ts).
 */

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const LINK = '{ tcp: "127.0.0.1:1502" }';
const DETECTORS = `detectors:
  - { id: S-loop, device: io1, input: 16, calls: [S] }
`;

/** The test fixture's files in a fresh directory, each passed through `edit`; returns its intersection file. */
function fixture(edit: (text: string) => string = (t) => t, extra = ""): string {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-reload-"));
  dirs.push(dir);
  const files = fixtureFiles(LINK, { extra });
  writeFixtureFiles(dir, files);
  const file = join(dir, "x1.yaml");
  writeFileSync(file, edit(readFileSync(file, "utf8")));
  return file;
}

/** The running fixture, and the same directory's files after `edit` (of the intersection, or of a file by name). */
function reload(
  edit: (text: string) => string,
  options: { extra?: string; file?: string; also?: Record<string, (text: string) => string> } = {},
): { running: IntersectionSetup; verdict: ReloadVerdict } {
  const file = fixture((t) => t, options.extra);
  const running = loadIntersectionSetup(file);
  const edits = { ...options.also, [options.file ?? "x1.yaml"]: edit };
  for (const [name, change] of Object.entries(edits)) {
    const target = join(file, "..", name);
    writeFileSync(target, change(readFileSync(target, "utf8")));
  }
  return { running, verdict: reloadVerdict(running, loadIntersectionSetup(file)) };
}

function refusedReasons(verdict: ReloadVerdict): string {
  expect(verdict.kind).toBe("refused");
  return verdict.kind === "refused" ? verdict.reasons.join("\n") : "";
}

describe("reload verdict", () => {
  it("a file that differs only in comments and layout is no change", () => {
    const { verdict } = reload((t) => `# edited by hand\n${t.replace("permissive:", "permissive:   # pairs")}`);
    expect(verdict.kind).toBe("unchanged");
  });

  it("a changed yellow, red clearance, walk or minimum green is taken, each change named", () => {
    const { verdict } = reload((t) =>
      t
        .replace(
          "{ id: M, kind: vehicle, minGreenSeconds: 5, yellowSeconds: 3, redClearanceSeconds: 1 }",
          "{ id: M, kind: vehicle, minGreenSeconds: 6, yellowSeconds: 4, redClearanceSeconds: 1.5 }",
        )
        .replace("walkSeconds: 7, pedestrianClearanceSeconds: 5 }\n  - { id: PM", "walkSeconds: 8, pedestrianClearanceSeconds: 5 }\n  - { id: PM"),
    );
    expect(verdict.kind).toBe("changed");
    if (verdict.kind !== "changed") return;
    expect(verdict.changes).toEqual([
      "group M: minimum green 5 s → 6 s",
      "group M: yellow 3 s → 4 s",
      "group M: red clearance 1 s → 1.5 s",
      "group PS: walk 7 s → 8 s",
    ]);
    expect(verdict.digest).toMatch(/^[0-9a-f]{64}$/);
  });

  it("conflicts, names, start-up, flash, monitor windows and phases are taken", () => {
    const { verdict } = reload((t) =>
      t
        .replace("name: Test St & Fast Ave", "name: Test Street & Fast Avenue")
        .replace("M: [PS]", "M: [PS, PM]")
        .replace("startup: { flashSeconds: 3, allRedSeconds: 2 }", "startup: { flashSeconds: 4, allRedSeconds: 2 }")
        .concat("flash: { flashesPerMinute: 60 }\nmonitor: { conflictMs: 250, redFailMs: 800, mismatchMs: 1000 }\nphases: { M: 2, S: 4, PS: 2, PM: 4 }\n"),
    );
    expect(verdict.kind, JSON.stringify(verdict)).toBe("changed");
    if (verdict.kind !== "changed") return;
    expect(verdict.changes).toEqual([
      'name: "Test St & Fast Ave" → "Test Street & Fast Avenue"',
      "permissive now: M+PM",
      "start-up flash 3 s → 4 s",
      "flash period 1.091 s → 1 s",
      "monitor conflict window 0.3 s → 0.25 s",
      "phase numbers 1,2,3,4 → 2,4,2,4",
    ]);
  });

  it("a detector's settings are taken; its input, id or a new detector are refused", () => {
    const settings = reload((t) => t.replace("calls: [S] }", "calls: [S], delaySeconds: 2 }"), { extra: DETECTORS });
    expect(settings.verdict.kind, JSON.stringify(settings.verdict)).toBe("changed");
    const input = reload((t) => t.replace("input: 16", "input: 18"), { extra: DETECTORS });
    expect(refusedReasons(input.verdict)).toContain(
      "the detectors or their inputs changed: were S-loop (vehicle, io1 input 16), now S-loop (vehicle, io1 input 18)",
    );
    const added = reload((t) => t.replace("calls: [S] }", "calls: [S] }\n  - { id: S-loop2, device: io1, input: 17, calls: [S] }"), {
      extra: DETECTORS,
    });
    expect(refusedReasons(added.verdict)).toContain("the detectors or their inputs changed");
  });

  it("groups added, removed, renamed, reordered or of another kind are refused, with what to do", () => {
    // The plans name the groups too: the file and its plan renamed together (else the plan refuses it).
    const rename = (t: string) => t.replaceAll(/\bPM\b/g, "PX");
    const renamed = reload(rename, { also: { "plans/fast.yaml": rename } });
    expect(refusedReasons(renamed.verdict)).toContain(
      "the signal groups changed: were M (vehicle), S (vehicle), PS (pedestrian), PM (pedestrian), now M (vehicle), S (vehicle), PS (pedestrian), PX (pedestrian)",
    );
    const reordered = reload((t) => {
      // M and S swapped in the file: the same groups, in another order (every state is indexed by it).
      const lines = t.split("\n");
      const m = lines.findIndex((l) => l.includes("{ id: M,"));
      [lines[m], lines[m + 1]] = [lines[m + 1] as string, lines[m] as string];
      return lines.join("\n");
    });
    expect(refusedReasons(reordered.verdict)).toContain("were M (vehicle), S (vehicle)");
  });

  it("the lamp wiring, a module's link, unit, timings or profile are refused, naming the channel and the device", () => {
    const wiring = reload((t) => t.replace("M: { red: 0, yellow: 1, green: 2 }", "M: { red: 0, yellow: 2, green: 1 }"));
    expect(refusedReasons(wiring.verdict)).toContain(
      "device io1: its lamp wiring changed (channel 1: M yellow → M green; channel 2: M green → M yellow)",
    );
    const link = reload((t) => t.replace("127.0.0.1:1502", "127.0.0.1:1503"));
    expect(refusedReasons(link.verdict)).toContain(
      "device io1: its link changed from tcp 127.0.0.1:1502 to tcp 127.0.0.1:1503",
    );
    const watchdog = reload((t) => t.replace("watchdogMs: 1000", "watchdogMs: 2000"));
    expect(refusedReasons(watchdog.verdict)).toContain("device io1: watchdogMs changed from 1000 to 2000");
    const unit = reload((t) => t.replace("    timeoutMs: 200", "    unitId: 7\n    timeoutMs: 200"));
    expect(refusedReasons(unit.verdict)).toMatch(/device io1: its unit id changed from \d+ to 7/);
  });

  it("another corridor time reference is refused: every plan's cycle grid moves with it", () => {
    const { verdict } = reload((t) => t.replace('dailySync: "00:00:00"', 'dailySync: "02:00:00"'), {
      file: "corridor.yaml",
    });
    expect(refusedReasons(verdict)).toContain("the corridor's time reference changed");
  });

  it("a change to the plans directory alone is no change to the running configuration", () => {
    const { verdict } = reload((t) => t.replace("offsetSeconds: 0", "offsetSeconds: 3"), { file: "plans/fast.yaml" });
    expect(verdict.kind).toBe("unchanged");
  });
});

describe("the plan in force compiled again for a reloaded file", () => {
  it("for the same file, every example plan of every example intersection comes out exactly as compiled", () => {
    const corridor = loadCorridor("config/corridor.yaml");
    const plans = readdirSync(corridor.plansDirectory)
      .filter((f) => f.endsWith(".yaml"))
      .map((f) => loadPlan(join(corridor.plansDirectory, f)));
    let checked = 0;
    for (const file of corridor.intersectionFiles.values()) {
      const setup = loadIntersectionSetup(file);
      const intersection = setup.intersection.intersection;
      for (const plan of plans) {
        if (!Object.hasOwn(plan.raw.intersections, intersection.id)) continue;
        const compiled = compileIntersectionPlan(intersection, plan, corridor);
        const again = recompilePlan(compiled, intersection, intersection);
        expect(again.ok, `${basename(file)} ${plan.raw.id}`).toBe(true);
        if (again.ok) expect(again.value).toEqual(compiled);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(12);
  });

  it("a longer yellow raises the stage's minimum and keeps the plan's identity", () => {
    const file = fixture();
    const running = loadIntersectionSetup(file);
    writeFileSync(file, readFileSync(file, "utf8").replace("yellowSeconds: 3, redClearanceSeconds: 1 }\n  - { id: S", "yellowSeconds: 6, redClearanceSeconds: 1 }\n  - { id: S"));
    const reloaded = loadIntersectionSetup(file);
    const plan = running.initialPlan;
    const again = recompilePlan(plan, running.intersection.intersection, reloaded.intersection.intersection);
    expect(again.ok).toBe(true);
    if (!again.ok) return;
    expect(again.value).toMatchObject({ planId: plan.planId, version: plan.version, digest: plan.digest });
    expect(again.value.stages.map((s) => s.splitMs)).toEqual(plan.stages.map((s) => s.splitMs));
    // main: M 5 + 6 + 1 = 12 s, the same as PS's 7 + 5 s; the fixture's 12 s (PS) before.
    expect(again.value.stages[0]?.minMs).toBe(12_000);
    expect(again.value).toEqual(reloaded.initialPlan);
  });

  it("a plan whose split no longer holds the new timings is refused with the plan's own message", () => {
    const file = fixture();
    const running = loadIntersectionSetup(file);
    // The initial plan's main stage (16 s) cannot hold M's 13 + 3 + 1 s: the file itself is refused
    // (the gateway would not start with it), and the plan in force, compiled again, says the same.
    writeFileSync(file, readFileSync(file, "utf8").replace("minGreenSeconds: 5, yellowSeconds: 3", "minGreenSeconds: 13, yellowSeconds: 3"));
    expect(() => loadIntersectionSetup(file)).toThrow(/stage main has a split of 16 s, shorter than the 17 s it needs/);
    // and the plan in force, compiled from the running gateway's plan, says the same.
    const reloaded = { ...running.intersection.intersection, groups: running.intersection.intersection.groups.map((g) => (g.id === "M" ? { ...g, minGoMs: 13_000 } : g)) };
    const again = recompilePlan(running.initialPlan, running.intersection.intersection, reloaded);
    expect(again.ok).toBe(false);
    if (again.ok) return;
    expect(again.issues.map((i) => i.message).join("\n")).toContain("stage main has a split of 16 s, shorter than the 17 s it needs");
  });

  it("a pair of a stage's groups no longer permissive is refused", () => {
    const file = fixture();
    const running = loadIntersectionSetup(file).intersection.intersection;
    const plan = loadIntersectionSetup(file).initialPlan;
    const reloaded = { ...running, permissive: running.permissive.map((row) => row.map(() => false)) };
    const again = recompilePlan(plan, running, reloaded);
    expect(again.ok).toBe(false);
    if (!again.ok) expect(again.issues.map((i) => i.message).join("\n")).toMatch(/M.*PS|PS.*M/);
  });
});
