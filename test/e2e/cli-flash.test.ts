import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { buildOnce } from "./cli.js";
import { cleanupProcesses, cli, startDemoCorridor } from "./processes.js";

beforeAll(() => buildOnce(), 180_000);
afterEach(() => cleanupProcesses());

interface Shown {
  intersections: { id: string; mode: string }[];
}

describe("greenwave flash on|off, as an operator runs it", () => {
  it("puts a running intersection into scheduled flash and back, audited; refuses a bad state word", async () => {
    const { broker } = await startDemoCorridor();
    const mode = () => {
      const run = cli(["status", "--broker", broker, "--json"]);
      return (JSON.parse(run.stdout) as Shown).intersections.find((i) => i.id === "x2")?.mode ?? null;
    };
    await until("x2 to sequence", 30_000, () => mode() === "coordinated" || mode() === "transition" || null);
    const on = cli(["flash", "on", "--intersection", "x2", "--broker", broker, "--by", "night crew"]);
    expect(on.status, on.stderr).toBe(0);
    expect(on.stdout).toContain("x2: scheduled flash requested");
    await until("x2 in flash", 30_000, () => mode() === "flash" || null);
    const off = cli(["flash", "off", "--intersection", "x2", "--broker", broker]);
    expect(off.status, off.stderr).toBe(0);
    await until("x2 out of flash", 30_000, () => mode() !== "flash" || null);
    // On the open demo broker nobody logs in: the audit says the identity is only claimed.
    const audit = cli(["audit", "--intersection", "x2", "--broker", broker, "--json"]);
    const entries = JSON.parse(audit.stdout) as {
      type: string;
      actor: string;
      detail: Record<string, unknown>;
    }[];
    const flashed = entries.filter((e) => e.type === "command" && e.detail.command === "flash");
    expect(flashed.map((e) => [e.actor, e.detail.on, e.detail.identity])).toEqual([
      ["night crew", true, "claimed"],
      [expect.any(String), false, "claimed"],
    ]);
    const bad = cli(["flash", "maybe", "--intersection", "x2", "--broker", broker]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('flash takes on or off, got "maybe"');
  }, 120_000);
});
