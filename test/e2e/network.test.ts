import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { writeFixture } from "../support/fixture-intersection.js";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { buildOnce, CLI } from "./cli.js";
import { cleanupProcesses, cli, dirs, start, stop } from "./processes.js";

beforeAll(() => buildOnce(), 180_000);

afterEach(() => cleanupProcesses());

describe("greenwave broker with users, a gateway and an operator, as separate processes", () => {
  it("only an operator's reset clears a latched fault; the gateway comes back through start-up", async () => {
    const dir = mkdtempSync(join(tmpdir(), "greenwave-net-"));
    dirs.push(dir);
    const hash = (password: string) => {
      const run = spawnSync("node", [CLI, "broker", "hash-password"], {
        input: `${password}\n`,
        encoding: "utf8",
      });
      expect(run.status, run.stderr).toBe(0);
      return run.stdout.trim();
    };
    writeFileSync(join(dir, "gw.secret"), "gateway-secret-1\n");
    writeFileSync(join(dir, "alice.secret"), "operator-secret-1\n");
    writeFileSync(
      join(dir, "users.yaml"),
      `kind: broker-users
users:
  - { username: gw-x1, passwordHash: "${hash("gateway-secret-1")}", role: gateway, corridor: test-corridor, intersection: x1 }
  - { username: alice, passwordHash: "${hash("operator-secret-1")}", role: operator }
`,
    );
    const broker = start(["broker", "--port", "0", "--users", join(dir, "users.yaml")]);
    const listening = await until("the broker", 10_000, () =>
      broker.lines.find((l) => l.msg === "broker listening"),
    );
    const url = listening.url as string;

    const sim = start(["sim", "io-module", "--tcp", "0", "--control", "0"]);
    const simUp = await until("the simulator", 10_000, () => sim.lines.find((l) => l.event === "listening"));
    const fixture = writeFixture(`{ tcp: "127.0.0.1:${simUp.modbusPort}" }`);
    dirs.push(fixture.dir);
    const gateway = start([
      "gateway",
      "--config",
      fixture.intersection,
      "--data-dir",
      join(dir, "data"),
      "--broker",
      url,
      "--username",
      "gw-x1",
      "--password-file",
      join(dir, "gw.secret"),
      "--http",
      "127.0.0.1:0",
    ]);
    await until("the gateway connected", 10_000, () =>
      gateway.lines.find((l) => l.msg === "connected to the broker"),
    );

    // The module stops answering: device lost, fault latched.
    await fetch(`${simUp.control}/faults`, { method: "PUT", body: JSON.stringify({ noAnswer: true }) });
    await until("the fault", 10_000, () =>
      gateway.lines.find((l) => String(l.msg).startsWith("FAULT latched")),
    );
    await fetch(`${simUp.control}/faults`, { method: "PUT", body: "{}" });
    // Liveness and service apart: the process is alive (/healthz 200) but the intersection is in its
    // fault flash, which a monitoring system sees on /readyz (503, with why).
    const http = String(gateway.lines.find((l) => l.msg === "gateway started")?.http);
    expect((await fetch(`${http}/healthz`)).status).toBe(200);
    const readyz = await fetch(`${http}/readyz`);
    expect(readyz.status).toBe(503);
    expect(((await readyz.json()) as { why: string }).why).toMatch(/^fault latched: device io1/);
    const operatorFlags = [
      "--broker",
      url,
      "--username",
      "alice",
      "--password-file",
      join(dir, "alice.secret"),
    ];
    const shown = cli(["status", "--json", ...operatorFlags]);
    expect(JSON.parse(shown.stdout).intersections[0]).toMatchObject({
      id: "x1",
      mode: "fault",
      fault: { kind: "device-lost" },
    });

    // The gateway's own credentials may not command: the broker refuses, nothing changes.
    const rogue = cli([
      "fault",
      "reset",
      "--intersection",
      "x1",
      "--corridor",
      "test-corridor",
      "--by",
      "mallory",
      "--timeout-ms",
      "1500",
      "--broker",
      url,
      "--username",
      "gw-x1",
      "--password-file",
      join(dir, "gw.secret"),
    ]);
    expect(rogue.status).toBe(1);
    expect(rogue.stderr).toContain("is this user allowed to send commands");
    await until("the broker's refusal in its log", 3000, () =>
      broker.out.includes("publish refused by the ACL"),
    );
    // Nor may an unknown password connect.
    writeFileSync(join(dir, "wrong.secret"), "nope\n");
    const stranger = cli([
      "status",
      "--broker",
      url,
      "--username",
      "alice",
      "--password-file",
      join(dir, "wrong.secret"),
    ]);
    expect(stranger.status).toBe(1);
    expect(stranger.stderr).toContain("cannot connect to the broker");

    const reset = cli([
      "fault",
      "reset",
      "--intersection",
      "x1",
      "--by",
      "alice",
      "--reason",
      "module replaced",
      ...operatorFlags,
    ]);
    expect(reset.status, reset.stderr).toBe(0);
    expect(reset.stdout).toContain("fault cleared");
    await until("start-up again", 10_000, () =>
      gateway.lines.find((l) => l.msg === "mode" && (l.event as { mode?: string })?.mode !== "startup"),
    );
    expect(await stop(gateway)).toBe(0);

    // The audit trail, read at the cabinet: who reset it, and why.
    const audit = spawnSync(
      "node",
      [
        "-e",
        `
      const D = require("better-sqlite3");
      const db = new D(${JSON.stringify(join(dir, "data", "x1", "gateway.db"))}, { readonly: true });
      console.log(JSON.stringify(db.prepare("select type, actor, detail from events order by seq").all()));
    `,
      ],
      { encoding: "utf8" },
    );
    const events = JSON.parse(audit.stdout) as { type: string; actor: string | null; detail: string }[];
    expect(events.filter((e) => e.type === "fault-reset").map((e) => e.actor)).toEqual(["alice"]);
    expect(events.some((e) => e.type === "command" && e.actor === "mallory")).toBe(false);
    expect(events.find((e) => e.type === "command")?.detail).toContain("module replaced");
  }, 60_000);
});

describe("an open broker (no users file) stays on this machine", () => {
  it("refuses to listen on any other address, saying what to do; loopback still works", async () => {
    for (const host of ["0.0.0.0", "::", "192.0.2.10"]) {
      const run = cli(["broker", "--host", host, "--port", "0"]);
      expect(run.status, run.stderr).toBe(2);
      expect(run.stderr).toContain(`listens on loopback only, not on ${host}`);
      expect(run.stderr).toContain("--users FILE");
      expect(run.stderr).not.toContain("    at ");
    }
    const broker = start(["broker", "--host", "127.0.0.1", "--port", "0"]);
    await until("the open broker on loopback", 10_000, () =>
      broker.lines.find((l) => l.msg === "broker listening"),
    );
    expect(await stop(broker)).toBe(0);
  }, 30_000);
});
