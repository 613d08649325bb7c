import { spawnSync } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import { buildOnce, CLI } from "./cli.js";

beforeAll(buildOnce, 180_000);

const greenwave = (...args: string[]) =>
  spawnSync("node", [CLI, ...args], { encoding: "utf8", timeout: 20_000 });

describe("greenwave on the command line", () => {
  it("--help lists the commands", () => {
    const run = greenwave("--help");
    expect(run.status).toBe(0);
    for (const command of ["config", "plan", "demo", "gateway", "sim"]) expect(run.stdout).toContain(command);
  });

  it("config check passes the example corridor", () => {
    const run = greenwave("config", "check", "config/corridor.yaml");
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain("ok  corridor main-street: 4 intersections");
  });

  it("config check on a broken file: exit 1, file:line:column: field: message, no stack trace", () => {
    const run = greenwave("config", "check", "config/broken/yellow-too-short.yaml");
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(
      /^config\/broken\/yellow-too-short\.yaml:\d+:\d+: groups\[0\]\.yellowSeconds: must be at least 3 s$/m,
    );
    expect(run.stderr).not.toMatch(/^\s+at /m);
  });

  it("plan check prints the intersection's stages with their minimums", () => {
    const run = greenwave("plan", "check", "--intersection", "config/intersections/oak.yaml", "am-peak");
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain("stage side: groups S, PM, split 38 s (minimum 26 s)");
  });

  it("a missing file is a clear error, not a crash", () => {
    const run = greenwave("config", "check", "config/nope.yaml");
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("config/nope.yaml: cannot read: no such file");
  });

  it("an unknown command or a bad option exits 2", () => {
    expect(greenwave("frobnicate").status).toBe(2);
    const bad = greenwave("gateway", "--config", "config/intersections/elm.yaml", "--tick-ms", "5");
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("--tick-ms must be a whole number of milliseconds from 20 to 1000");
  });
});
