import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildOnce, CLI } from "./cli.js";

beforeAll(buildOnce, 180_000);

const greenwave = (...args: string[]) =>
  spawnSync("node", [CLI, ...args], { encoding: "utf8", timeout: 20_000 });

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A copy of the example corridor in a directory of its own, to break one thing in. */
function exampleCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-config-check-"));
  dirs.push(dir);
  for (const part of ["corridor.yaml", "intersections", "plans", "devices"])
    cpSync(join("config", part), join(dir, part), { recursive: true });
  return dir;
}

function edit(file: string, from: string | RegExp, to: string): void {
  const text = readFileSync(file, "utf8");
  const changed = text.replace(from, to);
  if (changed === text) throw new Error(`${file}: ${String(from)} not found`);
  writeFileSync(file, changed);
}

/** The line (1-based) of a file that starts with `prefix` (after indentation). */
function lineOf(file: string, prefix: string): number {
  const index = readFileSync(file, "utf8")
    .split("\n")
    .findIndex((l) => l.trimStart().startsWith(prefix));
  if (index < 0) throw new Error(`${file}: no line starts with ${prefix}`);
  return index + 1;
}

/** `line:column` (1-based) of the first `token` on the line of a file that starts with `prefix`. */
function at(file: string, prefix: string, token: string): string {
  const line = lineOf(file, prefix);
  const text = readFileSync(file, "utf8").split("\n")[line - 1] as string;
  const column = text.indexOf(token);
  if (column < 0) throw new Error(`${file}:${line}: no ${token}`);
  return `${line}:${column + 1}`;
}

const errorLines = (stderr: string) =>
  stderr.split("\n").filter((l) => l !== "" && !/problems? found$/.test(l));

describe("config check of a plan file: against its corridor and that corridor's intersections", () => {
  it("finds the corridor by the plan's corridor id and reports conflicting greens and missing parts, located", () => {
    const run = greenwave("config", "check", "config/broken/broken-conflict.yaml");
    expect(run.status, run.stdout).toBe(1);
    const file = "config/broken/broken-conflict.yaml";
    // A field is located at its value: a stage's groups at their list, the parts at their first.
    expect(errorLines(run.stderr)).toEqual([
      `${file}:${at(file, "- { id: main", "[M, S, PS]")}: intersections.elm.stages[0].groups: plan broken-conflict, intersection elm: stage main serves groups M and S together, but the permissive matrix does not allow them to show green together`,
      `${file}:${at(file, "- { id: main", "[M, S, PS]")}: intersections.elm.stages[0].groups: plan broken-conflict, intersection elm: stage main serves groups S and PS together, but the permissive matrix does not allow them to show green together`,
      ...["oak", "pine", "cedar"].map(
        (id) =>
          `${file}:${at(file, "elm:", "elm")}: intersections: plan broken-conflict has no part for intersection ${id}`,
      ),
    ]);
    // No "ok" for a plan that fails (issue 19, item 1: it printed "ok  plan broken-conflict v1").
    expect(run.stdout).not.toContain("ok  plan broken-conflict");
    expect(run.stderr).not.toMatch(/^\s+at /m);
  });

  it("a good plan passes, compiled for every intersection of its corridor", () => {
    const run = greenwave("config", "check", "config/plans/am-peak.yaml");
    expect(run.status, run.stderr).toBe(0);
    for (const id of ["elm", "oak", "pine", "cedar"])
      expect(run.stdout).toContain(`ok  plan am-peak v1 at ${id}: cycle 100 s`);
  });

  it("a plan whose corridor cannot be found fails at its corridor field, and --corridor names it", () => {
    const dir = mkdtempSync(join(tmpdir(), "greenwave-lone-plan-"));
    dirs.push(dir);
    // Two levels down: the search (beside the plan, one directory up) stays inside this directory.
    const plan = join(dir, "drafts/new/am-peak.yaml");
    mkdirSync(dirname(plan), { recursive: true });
    cpSync("config/plans/am-peak.yaml", plan);
    const lone = greenwave("config", "check", plan);
    expect(lone.status).toBe(1);
    expect(lone.stderr).toMatch(
      new RegExp(
        `^${plan.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:${lineOf(plan, "corridor:")}:\\d+: corridor: no corridor file with id main-street .*--corridor FILE`,
        "m",
      ),
    );
    const named = greenwave("config", "check", "--corridor", "config/corridor.yaml", plan);
    expect(named.status, named.stderr).toBe(0);
    expect(named.stdout).toContain("ok  plan am-peak v1 at cedar:");
  });

  it("two corridor files with the plan's corridor id, equally near: ambiguous, name one with --corridor", () => {
    const dir = exampleCopy();
    cpSync(join(dir, "corridor.yaml"), join(dir, "corridor-copy.yaml"));
    edit(join(dir, "corridor-copy.yaml"), "plansDirectory: plans", "plansDirectory: other-plans");
    edit(join(dir, "corridor.yaml"), "plansDirectory: plans", "plansDirectory: other-plans");
    const plan = join(dir, "plans/am-peak.yaml");
    const run = greenwave("config", "check", plan);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(
      `${plan}:${at(plan, "corridor:", "main-street")}: corridor: corridor main-street is in several files (${join(dir, "corridor-copy.yaml")}, ${join(dir, "corridor.yaml")}): name the one to check against with --corridor FILE`,
    );
  });
});

describe("config check: an initial plan that does not exist", () => {
  it("fails the corridor check at the intersection's initialPlan field", () => {
    const dir = exampleCopy();
    const oak = join(dir, "intersections/oak.yaml");
    edit(oak, /^initialPlan: .*$/m, "initialPlan: am");
    const error = `${oak}:${at(oak, "initialPlan:", "am")}: initialPlan: initial plan am is not a plan of corridor main-street: there is no am.yaml in its plans directory ${join(dir, "plans")} (it has am-peak, off-peak, pm-peak)`;
    const corridor = greenwave("config", "check", join(dir, "corridor.yaml"));
    expect(corridor.status, corridor.stdout).toBe(1);
    expect(errorLines(corridor.stderr)).toEqual([error]);
    const alone = greenwave("config", "check", oak);
    expect(alone.status).toBe(1);
    expect(errorLines(alone.stderr)).toEqual([error]);
  });
});

describe("config check reports every independent problem of a file in one run", () => {
  it("a plan: its splits, each conflict and each unknown group, at once", () => {
    const file = "config/broken/broken-several.yaml";
    const run = greenwave("config", "check", file);
    expect(run.status).toBe(1);
    const stages = at(file, "- { id: main", "-");
    const main = at(file, "- { id: main", "[M, S, PS]");
    const side = at(file, "- { id: side", "X]");
    const prefix = "plan broken-several, intersection elm:";
    const lines = errorLines(run.stderr);
    expect(lines).toEqual(
      expect.arrayContaining([
        `${file}:${stages}: intersections.elm.stages: ${prefix} splits sum to 95 s but the cycle is 90 s`,
        `${file}:${main}: intersections.elm.stages[0].groups: ${prefix} stage main serves groups M and S together, but the permissive matrix does not allow them to show green together`,
        `${file}:${main}: intersections.elm.stages[0].groups: ${prefix} stage main serves groups S and PS together, but the permissive matrix does not allow them to show green together`,
        `${file}:${side}: intersections.elm.stages[1].groups[1]: ${prefix} stage side names group "X", which intersection elm does not have (it has M, S, PS, PM)`,
      ]),
    );
    expect(run.stderr).toContain(`${lines.length} problems found`);
  });

  it("a corridor: a plan's split sum and its conflicts together", () => {
    const dir = exampleCopy();
    const plan = join(dir, "plans/am-peak.yaml");
    edit(
      plan,
      "{ id: main, groups: [M, PS], splitSeconds: 60 }",
      "{ id: main, groups: [M, S, PS], splitSeconds: 65 }",
    );
    const run = greenwave("config", "check", join(dir, "corridor.yaml"));
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(
      "plan am-peak, intersection elm: splits sum to 105 s but the cycle is 100 s",
    );
    expect(run.stderr).toContain("plan am-peak, intersection elm: stage main serves groups M and S together");
  });

  it("an intersection: its groups' problems and its wiring's together", () => {
    const dir = exampleCopy();
    const elm = join(dir, "intersections/elm.yaml");
    edit(elm, "pedestrianClearanceSeconds: 10", "pedestrianClearanceSeconds: 5");
    edit(elm, "PM: { dontWalk: 8, walk: 9 }", "PM: { dontWalk: 8 }");
    const run = greenwave("config", "check", elm);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(
      "groups[2].pedestrianClearanceSeconds: pedestrian clearance 5 s is too short",
    );
    expect(run.stderr).toContain("PM walk is not wired to any device channel");
  });
});
