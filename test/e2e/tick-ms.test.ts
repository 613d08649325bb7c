import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildOnce, CLI } from "./cli.js";

beforeAll(buildOnce, 180_000);

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const greenwave = (...args: string[]) =>
  spawnSync("node", [CLI, ...args], { encoding: "utf8", timeout: 20_000 });

describe("greenwave gateway --tick-ms against the intersection's windows", () => {
  it("refuses a 1000 ms tick for elm: exit 2, naming --tick-ms, the limit and the window, before opening anything", () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), "greenwave-tick-")), "data");
    dirs.push(join(dataDir, ".."));
    // No module listens on elm's port and no broker is given: the refusal comes before either is tried.
    const run = greenwave(
      "gateway",
      "--config",
      "config/intersections/elm.yaml",
      "--tick-ms",
      "1000",
      "--data-dir",
      dataDir,
    );
    expect(run.status, run.stderr).toBe(2);
    expect(run.stderr).toMatch(
      /^greenwave: --tick-ms 1000 is too long for intersection elm: at most 100 ms, set by its conflict window \(monitor\.conflictMs 300 ms\), which must span at least 3 ticks: /m,
    );
    expect(run.stderr).toContain("its flash (55 flashes/min: 545 ms lit, then dark) (at most 272 ms)");
    expect(run.stderr).not.toMatch(/^\s+at /m);
    // Nothing was opened: not even the store's directory.
    expect(existsSync(dataDir)).toBe(false);
  });
});
