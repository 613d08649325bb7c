import { readFileSync, writeFileSync } from "node:fs";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { writeFixture } from "../support/fixture-intersection.js";
import { readHistory, runsOf } from "../support/lamp-history.js";
import { buildOnce } from "./cli.js";
import { cleanupProcesses, cli, dirs, type Proc, start } from "./processes.js";

/**
 * Issue 19, item 16: a changed intersection file is taken on SIGHUP (`systemctl reload greenwave`)
 * through the same safe transition as a plan change, or refused with a reason — proved on a gateway
 * started as a user starts it, against the simulated module, from the lamps the module recorded.
 */

beforeAll(() => buildOnce(), 180_000);
afterEach(() => cleanupProcesses());

/** Allowance for write-arrival jitter between the gateway's tick and the simulator's clock (as in stop-signal). */
const JITTER_MS = 80;
/**
 * A yellow shows no longer than its time plus this: a late tick at either end and the write's delay,
 * with room for a loaded machine, but under the 1 s between the old yellow and the new one.
 */
const LATE_MS = 900;

const YELLOW_3 = "{ id: M, kind: vehicle, minGreenSeconds: 5, yellowSeconds: 3, redClearanceSeconds: 1 }";
const YELLOW_4 = YELLOW_3.replace("yellowSeconds: 3", "yellowSeconds: 4");

async function startSimAndGateway() {
  const sim = start(["sim", "io-module", "--tcp", "0", "--control", "0"]);
  const up = await until("the simulator to listen", 10_000, () =>
    sim.lines.find((l) => l.event === "listening"),
  );
  const fixture = writeFixture(`{ tcp: "127.0.0.1:${String(up.modbusPort)}" }`);
  dirs.push(fixture.dir);
  const gateway = start(["gateway", "--config", fixture.intersection, "--data-dir", fixture.dataDir]);
  await until("the gateway to start", 15_000, () => findLine(gateway, "gateway started"));
  const edit = (change: (text: string) => string) =>
    writeFileSync(fixture.intersection, change(readFileSync(fixture.intersection, "utf8")));
  return { control: up.control as string, gateway, fixture, edit };
}

/** Polls an async probe (the simulator's control API) until it answers something, or fails after `ms`. */
async function poll<T>(what: string, ms: number, probe: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const findLine = (p: Proc, msg: string, after = 0) =>
  p.lines.slice(after).find((l) => String(l.msg).startsWith(msg));
const logTime = (line: Record<string, unknown>) => Date.parse(line.time as string);

/** Sends SIGHUP and waits for the gateway's answer (the first line after it that starts with one of `answers`). */
async function sighup(gateway: Proc, answers: readonly string[]): Promise<Record<string, unknown>> {
  const from = gateway.lines.length;
  gateway.child.kill("SIGHUP");
  return await until(`the gateway's answer to SIGHUP (${answers.join(" | ")})`, 10_000, () =>
    gateway.lines.slice(from).find((l) => answers.some((a) => String(l.msg).startsWith(a))),
  );
}

/** Waits until the module shows `group` green again after `sinceMs` (the gateway still runs its cycle). */
async function greenAfter(control: string, group: "M" | "S", sinceMs: number, withinMs: number) {
  return await poll(`${group} green on the module after the refusal`, withinMs, async () => {
    const runs = runsOf(await readHistory(control), group);
    return runs.find((r) => r.lamp === "G" && r.from > sinceMs) ?? null;
  });
}

describe("greenwave gateway on SIGHUP, against the simulated module", () => {
  it("refuses a broken file and changed wiring with the reason, keeps running, and says when nothing changed", async () => {
    const { control, gateway, fixture, edit } = await startSimAndGateway();
    const original = readFileSync(fixture.intersection, "utf8");

    // A broken file: refused at its line and column, the old configuration runs on.
    edit((t) => t.replace(YELLOW_3, YELLOW_3.replace("yellowSeconds: 3", "yellowSeconds: 30")));
    const broken = await sighup(gateway, ["reload of"]);
    expect(broken.level, gateway.out).toBe(50);
    expect(String(broken.msg)).toMatch(
      /refused; the gateway runs on with the configuration it has: .*x1\.yaml:7:\d+: groups\[0\]\.yellowSeconds: /,
    );
    expect(broken.kind).toBe("invalid");

    // Changed lamp wiring: refused with what changed and what to do.
    writeFileSync(fixture.intersection, original);
    edit((t) => t.replace("M: { red: 0, yellow: 1, green: 2 }", "M: { red: 0, yellow: 2, green: 1 }"));
    const wiring = await sighup(gateway, ["reload of"]);
    expect(wiring.kind, gateway.out).toBe("needs-restart");
    const reasons = (wiring.reasons as string[]).join("\n");
    expect(reasons).toContain(
      "device io1: its lamp wiring changed (channel 1: M yellow → M green; channel 2: M green → M yellow)",
    );
    expect(reasons).toContain("restart the gateway to take it");

    // Still running, on the old wiring: M's green still comes on its own channel.
    expect(gateway.child.exitCode).toBeNull();
    await greenAfter(control, "M", logTime(wiring), 45_000);
    expect(gateway.child.exitCode).toBeNull();

    // The file as it was: nothing to reload.
    writeFileSync(fixture.intersection, original);
    const same = await sighup(gateway, [
      "x1.yaml: no change",
      `${fixture.intersection}: no change`,
      "reload of",
    ]);
    expect(String(same.msg), gateway.out).toMatch(/no change to what the gateway runs by; nothing to reload/);

    // Both refusals are in the audit trail, read at the cabinet while the gateway runs.
    const audit = cli(["audit", "--intersection", "x1", "--data-dir", fixture.dataDir, "--json"]);
    expect(audit.status, audit.stderr).toBe(0);
    const events = JSON.parse(audit.stdout) as { type: string; detail: { kind?: string } }[];
    expect(events.filter((e) => e.type === "config-reload-refused").map((e) => e.detail.kind)).toEqual([
      "invalid",
      "needs-restart",
    ]);
  }, 120_000);

  it("takes a changed yellow at the next cycle boundary: the lamps then show the new yellow, no interval cut", async () => {
    const { control, gateway, fixture, edit } = await startSimAndGateway();
    // Wait for the cycle to run and one M yellow to have ended (3 s, the file's).
    await poll("an M yellow under the old file", 60_000, async () => {
      const runs = runsOf(await readHistory(control), "M");
      const i = runs.findIndex((r) => r.lamp === "Y" && r.to !== null);
      return i >= 0 ? true : null;
    });

    edit((t) => t.replace(YELLOW_3, YELLOW_4));
    const reloaded = await sighup(gateway, ["reloaded", "reload of"]);
    expect(String(reloaded.msg), gateway.out).toMatch(
      /^reloaded .*x1\.yaml \(group M: yellow 3 s → 4 s\): takes effect with plan fast v1 at the next cycle boundary$/,
    );
    const inForce = await until("the reloaded file in force at a cycle boundary", 45_000, () =>
      findLine(gateway, "the reloaded"),
    );
    expect(String(inForce.msg), gateway.out).toMatch(/is in force from this cycle boundary$/);
    const boundaryAt = logTime(inForce);

    // The next M yellow after the boundary is 4 s; every one before it was 3 s; none was cut.
    const runs = await poll("an M yellow after the boundary", 45_000, async () => {
      const all = runsOf(await readHistory(control), "M");
      return all.some((r) => r.lamp === "Y" && r.from > boundaryAt && r.to !== null) ? all : null;
    });
    const yellows = runs
      .filter((r) => r.lamp === "Y" && r.to !== null)
      .map((r) => ({ from: r.from, ms: (r.to as number) - r.from }));
    const story = JSON.stringify(yellows);
    const before = yellows.filter((y) => y.from < logTime(reloaded));
    const after = yellows.filter((y) => y.from > boundaryAt);
    expect(before.length, story).toBeGreaterThan(0);
    for (const y of before) {
      expect(y.ms, story).toBeGreaterThanOrEqual(3000 - JITTER_MS);
      expect(y.ms, story).toBeLessThan(3000 + LATE_MS);
    }
    expect(after.length, story).toBeGreaterThan(0);
    for (const y of after) {
      expect(y.ms, story).toBeGreaterThanOrEqual(4000 - JITTER_MS);
      expect(y.ms, story).toBeLessThan(4000 + LATE_MS);
    }
    // No yellow anywhere shorter than the file's time when it began; no fault, no flash.
    for (const y of yellows) expect(y.ms, story).toBeGreaterThanOrEqual(3000 - JITTER_MS);
    expect(
      gateway.lines.filter((l) => (l.level as number) >= 50),
      gateway.out,
    ).toEqual([]);

    const audit = cli(["audit", "--intersection", "x1", "--data-dir", fixture.dataDir, "--json"]);
    const events = JSON.parse(audit.stdout) as { type: string; detail: Record<string, unknown> }[];
    expect(events.find((e) => e.type === "config-reloaded")?.detail).toMatchObject({
      changes: ["group M: yellow 3 s → 4 s"],
      plan: { id: "fast", version: 1 },
    });
  }, 180_000);
});
