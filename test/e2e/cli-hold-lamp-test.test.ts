import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashPassword } from "../../gateway/broker/users.js";
import { writeCorridorFixture } from "../../simulators/fixtures/corridor-fixture.js";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { decode, readHistory } from "../support/lamp-history.js";
import { buildOnce } from "./cli.js";
import { cleanupProcesses, cli, dirs, type Proc, start } from "./processes.js";

/**
 * `greenwave hold` and `greenwave lamp-test` as an operator runs them (issue 19, item 14), against real
 * processes started the way a user starts them: the broker with users (the operator's identity is her
 * login), the simulated I/O module, and one gateway driving it. What the lamps did is read from the
 * simulator's recorded outputs, not from the gateway's own account.
 */

beforeAll(() => buildOnce(), 180_000);
afterAll(() => cleanupProcesses());

const CORRIDOR = "test-corridor";

interface Setup {
  broker: string;
  control: string;
  metrics: string;
  gateway: Proc;
  /** The operator's flags: alice, with her password file. */
  as: string[];
}

let setup: Setup;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-hold-lamp-"));
  dirs.push(dir);
  writeFileSync(join(dir, "gw.secret"), "gw-x1-secret\n");
  writeFileSync(join(dir, "alice.secret"), "alice-secret\n");
  writeFileSync(
    join(dir, "users.yaml"),
    `kind: broker-users
users:
  - { username: gw-x1, passwordHash: "${await hashPassword("gw-x1-secret")}", role: gateway, corridor: ${CORRIDOR}, intersection: x1 }
  - { username: alice, passwordHash: "${await hashPassword("alice-secret")}", role: operator }
`,
  );
  const broker = start(["broker", "--port", "0", "--users", join(dir, "users.yaml")]);
  const sim = start(["sim", "io-module", "--tcp", "0", "--control", "0"]);
  const url = (
    await until("the broker", 15_000, () => broker.lines.find((l) => l.msg === "broker listening"))
  ).url as string;
  const simUp = await until("the simulator", 15_000, () => sim.lines.find((l) => l.event === "listening"));
  const control = simUp.control as string;
  const fixture = writeCorridorFixture(1, { devicePort: () => simUp.modbusPort as number });
  dirs.push(fixture.dir);
  const gateway = start([
    ...["gateway", "--config", join(fixture.dir, "x1.yaml"), "--data-dir", join(dir, "data")],
    ...["--broker", url, "--username", "gw-x1", "--password-file", join(dir, "gw.secret")],
    ...["--http", "127.0.0.1:0"],
  ]);
  const http = (
    await until("the gateway", 15_000, () => gateway.lines.find((l) => l.msg === "gateway started"))
  ).http as string;
  setup = {
    broker: url,
    control,
    metrics: `${http.startsWith("http") ? http : `http://${http}`}/metrics`,
    gateway,
    as: ["--broker", url, "--username", "alice", "--password-file", join(dir, "alice.secret")],
  };
}, 60_000);

function status(): { mode: string; cycle?: { stage: string } | null } | null {
  const run = cli(["status", ...setup.as, "--json"]);
  if (run.status !== 0) return null;
  const shown = JSON.parse(run.stdout) as {
    intersections: { id: string; mode: string; cycle?: { stage: string } | null }[];
  };
  return shown.intersections.find((i) => i.id === "x1") ?? null;
}

const mode = () => status()?.mode ?? null;

function exitOf(proc: Proc): Promise<number | null> {
  return new Promise((resolve) => {
    if (proc.child.exitCode !== null) resolve(proc.child.exitCode);
    else proc.child.once("exit", resolve);
  });
}

/**
 * `greenwave lamp-test --confirm --step 1s`, once it has started; while the clearances into flash still
 * run the gateway refuses and says so, and it is asked again.
 */
async function startLampTest(): Promise<Proc> {
  for (let attempt = 0; ; attempt++) {
    const proc = start(["lamp-test", "--intersection", "x1", "--confirm", "--step", "1s", ...setup.as]);
    await until(
      "the lamp test's answer",
      20_000,
      () => proc.out.includes("lamp test started") || proc.child.exitCode !== null || null,
    );
    if (!proc.out.includes("still entering flash") || attempt >= 30) return proc;
    await exitOf(proc);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

interface AuditEntry {
  type: string;
  actor: string;
  detail: Record<string, unknown>;
}

function audit(): AuditEntry[] {
  const read = cli(["audit", "--intersection", "x1", ...setup.as, "--json"]);
  expect(read.status, read.stderr).toBe(0);
  return JSON.parse(read.stdout) as AuditEntry[];
}

describe("greenwave hold on|off, as an operator runs it", () => {
  it("holds the stage shown past its split, shows mode hold in status and metrics, releases it; audited under the login", async () => {
    await until("x1 to sequence", 40_000, () => mode() === "coordinated" || mode() === "transition" || null);
    const on = cli(["hold", "on", "--intersection", "x1", "--for", "2m", "--by", "lamp crew", ...setup.as]);
    expect(on.status, on.stderr).toBe(0);
    expect(on.stdout).toMatch(/^x1: holding: stage (main|side) stays for at most 2 min/);
    const held = await until("x1 on hold", 10_000, () => {
      const s = status();
      return s?.mode === "hold" ? s : null;
    });
    const metrics = await (await fetch(setup.metrics)).text();
    expect(metrics).toMatch(/greenwave_mode\{[^}]*mode="hold"[^}]*\} 1/);
    // Held for 20 s, longer than either split (16 s, 14 s): the lamps did not move on meanwhile.
    const since = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 20_000));
    expect(status()?.cycle?.stage).toBe(held.cycle?.stage);
    const changes = (await readHistory(setup.control)).filter((e) => e.t >= since);
    const green = held.cycle?.stage === "main" ? "M" : "S";
    expect(changes.every((e) => decode(e.outputs)[green] === "G")).toBe(true);

    const off = cli(["hold", "off", "--intersection", "x1", ...setup.as]);
    expect(off.status, off.stderr).toBe(0);
    expect(off.stdout).toMatch(/^x1: hold released: the sequence goes on from stage/);
    await until("x1 off hold", 15_000, () => (mode() !== "hold" && mode() !== null) || null);

    const commands = audit().filter((e) => e.type === "command" && e.detail.command === "hold");
    expect(commands.map((e) => [e.actor, e.detail.on, e.detail.identity, e.detail.note ?? null])).toEqual([
      ["alice", true, "login", "lamp crew"],
      ["alice", false, "login", null],
    ]);
    expect(
      audit()
        .filter((e) => e.type === "hold")
        .map((e) => [e.actor, e.detail.held, e.detail.reason]),
    ).toEqual([
      ["alice", true, "operator"],
      ["alice", false, "operator"],
    ]);
  }, 120_000);

  it("refuses a hold outside a running plan, saying why, and a bad duration before sending anything", () => {
    const bad = cli(["hold", "on", "--intersection", "x1", "--for", "3h", ...setup.as]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--for must be from 1 s to 2 h, got "3h"');
    const flash = cli(["flash", "on", "--intersection", "x1", ...setup.as]);
    expect(flash.status, flash.stderr).toBe(0);
    const refused = cli(["hold", "on", "--intersection", "x1", ...setup.as]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(
      /x1 refused hold on: cannot hold: (the intersection is entering flash|the intersection is not running a plan)/,
    );
  }, 60_000);
});

describe("greenwave lamp-test, as a technician runs it", () => {
  it("needs --confirm, runs only in scheduled flash, reports a dead lamp as no current; audited per lamp", async () => {
    const unconfirmed = cli(["lamp-test", "--intersection", "x1", ...setup.as]);
    expect(unconfirmed.status).toBe(2);
    expect(unconfirmed.stderr).toContain("Run it again with --confirm to start it.");
    await until("x1 in flash", 30_000, () => mode() === "flash" || null);
    const proc = await startLampTest();
    // From here on the lamps are the test's (the clearances into flash ran before it could start).
    const since = Date.now();
    expect(proc.out).toContain("x1: lamp test started: 10 lamps, each lit alone for 1 s");
    // S's yellow lamp (channel 4) dies now, while M's lamps are tested: its relay closes, no current flows.
    const res = await fetch(`${setup.control}/faults`, {
      method: "PUT",
      body: JSON.stringify({ dark: [4] }),
    });
    expect(res.status).toBe(200);
    const test = { code: await exitOf(proc), out: proc.out };
    expect(test.code, test.out).toBe(1); // not all ok
    expect(test.out).toContain("lamp test at x1: completed: 10 of 10 lamps tested, 1 not ok");
    expect(test.out).toMatch(/S yellow\s+NO CURRENT\s+lit in 0 of \d+ readbacks/);
    for (const lamp of [
      "M red",
      "M yellow",
      "M green",
      "S red",
      "S green",
      "PS don't walk",
      "PS walk",
      "PM walk",
    ])
      expect(test.out).toMatch(new RegExp(`${lamp}\\s+ok\\s+lit in (\\d+) of \\1 readbacks`));
    expect(test.out).toContain("NO CURRENT: check the lamp");
    expect(mode()).toBe("flash");

    // The field saw each lamp alone: S's green with every other head flashing red or dark, never two
    // groups showing green, yellow or WALK at once.
    const changes = (await readHistory(setup.control))
      .filter((e) => e.t >= since)
      .map((e) => decode(e.outputs));
    expect(changes.some((l) => l.S === "G" && l.M !== "G" && l.PS !== "W" && l.PM !== "W")).toBe(true);
    for (const l of changes) {
      const going = [
        l.M === "G" || l.M === "Y",
        l.S === "G" || l.S === "Y",
        l.PS.includes("W"),
        l.PM.includes("W"),
      ];
      expect(going.filter(Boolean).length).toBeLessThanOrEqual(1);
    }

    const entries = audit();
    const lamps = entries.filter((e) => e.type === "lamp-test-lamp");
    expect(lamps).toHaveLength(10);
    expect(lamps.every((e) => e.actor === "alice")).toBe(true);
    expect(lamps.find((e) => e.detail.group === "S" && e.detail.lamp === "yellow")?.detail.verdict).toBe(
      "no-current",
    );
    const ended = entries.find((e) => e.type === "lamp-test-ended");
    expect(ended?.detail).toMatchObject({
      outcome: "completed",
      tested: 10,
      notOk: ["S yellow: no-current"],
    });
    const started = entries.filter((e) => e.type === "command" && e.detail.command === "lamp-test");
    expect(started.at(-1)).toMatchObject({
      actor: "alice",
      detail: { action: "start", identity: "login", ok: true },
    });
  }, 180_000);

  it("is aborted from another terminal; the lamp under test ends through its clearances and flash returns", async () => {
    await fetch(`${setup.control}/faults`, { method: "PUT", body: "{}" });
    const test = await startLampTest();
    await until("the first lamp reported", 30_000, () => test.out.includes("M red") || null);
    const abort = cli(["lamp-test", "--intersection", "x1", "--abort", ...setup.as]);
    expect(abort.status, abort.stderr).toBe(0);
    expect(abort.stdout).toMatch(/^x1: aborting the lamp test/);
    expect(await exitOf(test)).toBe(1);
    expect(test.out).toMatch(
      /lamp test at x1: aborted by alice \(lamp-test --abort\): \d+ of 10 lamps tested/,
    );
    expect(mode()).toBe("flash");
    const again = cli(["lamp-test", "--intersection", "x1", "--abort", ...setup.as]);
    expect(again.stdout).toContain("x1: no lamp test is running");
    // Refused outside scheduled flash, with what to do.
    expect(cli(["flash", "off", "--intersection", "x1", ...setup.as]).status).toBe(0);
    await until("x1 out of flash", 30_000, () => (mode() !== "flash" && mode() !== null) || null);
    const refused = cli(["lamp-test", "--intersection", "x1", "--confirm", ...setup.as]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(
      /x1 refused the lamp test: cannot start a lamp test: the intersection is not in scheduled flash \(\w+\): put it in flash first/,
    );
  }, 120_000);
});
