import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type RunningBroker, startBroker } from "../../gateway/broker/broker.js";
import { type BrokerUser, hashPassword } from "../../gateway/broker/users.js";
import type { CheckResult } from "../../gateway/doctor/check-result.js";
import { MIGRATIONS } from "../../gateway/store/migrations.js";
import { GatewayStore } from "../../gateway/store/store.js";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { elmConfig, TIMESYNC_SYNCED } from "../doctor/doctor-fixture.js";
import { buildOnce, CLI } from "./cli.js";
import { cleanupProcesses, dirs, start } from "./processes.js";

/*
 * `greenwave doctor` as a technician runs it: the compiled command, a simulated module as a process
 * (`greenwave sim io-module`), the embedded broker with a gateway user, a real store, the service's env
 * file and password file. timedatectl and systemctl are the only stand-ins: shell scripts first on
 * PATH that print what systemd-timesyncd and systemd print (their formats: test/doctor/*.test.ts),
 * because neither runs here. The README's example is this run's output (checked below).
 */

const TIMEDATECTL = `#!/bin/sh
case "$1" in
  show) printf 'NTP=yes\\nNTPSynchronized=yes\\n' ;;
  timesync-status) cat <<'EOF'
${TIMESYNC_SYNCED}EOF
  ;;
  *) exit 1 ;;
esac
`;
const SYSTEMCTL = `#!/bin/sh
case "$1" in
  is-system-running) echo running ;;
  show) printf 'LoadState=loaded\\nActiveState=inactive\\nSubState=dead\\nNRestarts=0\\nResult=success\\n' ;;
  *) exit 1 ;;
esac
`;

let root: string;
let bin: string;
let broker: RunningBroker;

beforeAll(async () => {
  buildOnce();
  root = mkdtempSync(join(tmpdir(), "greenwave-doctor-e2e-"));
  bin = join(root, "bin");
  mkdirSync(bin);
  for (const [name, script] of [
    ["timedatectl", TIMEDATECTL],
    ["systemctl", SYSTEMCTL],
  ] as const) {
    writeFileSync(join(bin, name), script);
    chmodSync(join(bin, name), 0o755);
  }
  const users = new Map<string, BrokerUser>([
    [
      "gw-elm",
      {
        principal: { role: "gateway", username: "gw-elm", corridor: "main-street", intersection: "elm" },
        passwordHash: await hashPassword("s3cret"),
      },
    ],
  ]);
  broker = await startBroker({ host: "127.0.0.1", port: 0, users });
}, 60_000);

afterAll(async () => {
  await broker?.close();
  rmSync(root, { recursive: true, force: true });
});

afterEach(cleanupProcesses);

/** A simulated module as its own process; its Modbus port. */
async function simulatedModule(...extra: string[]): Promise<number> {
  const sim = start(["sim", "io-module", "--tcp", "0", ...extra]);
  await until("the simulated module listens", 10_000, () => sim.lines.some((l) => l.event === "listening"));
  return sim.lines.find((l) => l.event === "listening")?.modbusPort as number;
}

/** An installed gateway's files: intersection file, data dir with a store, env file, password file. */
function cabinet(modbusPort: number, password = "s3cret") {
  const fixture = elmConfig(`{ tcp: "127.0.0.1:${modbusPort}" }`);
  dirs.push(fixture.dir);
  const secret = join(fixture.dir, "broker.secret");
  writeFileSync(secret, `${password}\n`, { mode: 0o600 });
  const envFile = join(fixture.dir, "gateway.env");
  writeFileSync(
    envFile,
    `GREENWAVE_BROKER_URL=${broker.url}\nGREENWAVE_ARGS="--username gw-elm --password-file ${secret} --http 127.0.0.1:9100"\n`,
  );
  GatewayStore.open(join(fixture.dataDir, "elm")).close();
  return { ...fixture, envFile };
}

/** Runs the compiled command (not spawnSync: the broker answers from this process meanwhile). */
function doctor(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn("node", [CLI, "doctor", ...args], {
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("exit", (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("greenwave doctor, as a technician runs it", () => {
  it("a module of another make: one FAIL naming the register and the profile, exit 1; --json says the same", async () => {
    const port = await simulatedModule("--reject-register", "256,257,258,259");
    const c = cabinet(port);
    const args = ["--config", c.config, "--data-dir", c.dataDir, "--gateway-env", c.envFile];
    const text = await doctor(args);
    expect(text.stderr).toBe("");
    expect(text.code).toBe(1);
    const lines = text.stdout.trimEnd().split("\n");
    expect(lines.map((l) => l.slice(0, 17))).toEqual([
      "PASS  config     ",
      "FAIL  module io1 ",
      "PASS  broker     ",
      "PASS  clock      ",
      "PASS  disk       ",
      "PASS  store elm  ",
      "WARN  service    ",
    ]);
    expect(lines[1]).toBe(
      `FAIL  module io1  (unit 1, profile generic-do32-di32, tcp 127.0.0.1:${port}) rejects the watchdog register 256 (watchdog.timeoutRegister) with exception 2 ILLEGAL DATA ADDRESS: this module is not a generic-do32-di32; pick the profile that matches it in ${c.config}`,
    );
    expect(lines[2]).toContain(`as gw-elm: connected in`);
    expect(lines[2]).toContain(`(settings from ${c.envFile})`);
    expect(lines[3]).toContain("offset -5.086 ms");
    expect(lines[5]).toContain(`schema ${MIGRATIONS.length} (this greenwave's)`);

    const json = await doctor([...args, "--json"]);
    expect(json.code).toBe(1);
    const results = JSON.parse(json.stdout) as CheckResult[];
    expect(results.map((r) => [r.check, r.status])).toEqual([
      ["config", "PASS"],
      ["module io1", "FAIL"],
      ["broker", "PASS"],
      ["clock", "PASS"],
      ["disk", "PASS"],
      ["store elm", "PASS"],
      ["service", "WARN"],
    ]);
    expect(Object.keys(results[1] as object)).toEqual(["check", "status", "detail", "action"]);
    expect(results[1]?.action).toBe(
      `this module is not a generic-do32-di32; pick the profile that matches it in ${c.config}`,
    );

    // The README's example is this output, up to addresses, paths and numbers.
    expect(normalise(readmeExample())).toEqual(normalise(text.stdout));
  }, 60_000);

  it("everything in order but the service not started yet: warnings only, exit 0", async () => {
    const c = cabinet(await simulatedModule());
    const result = await doctor([
      "--config",
      c.config,
      "--data-dir",
      c.dataDir,
      "--gateway-env",
      c.envFile,
      "--json",
    ]);
    expect(result.code).toBe(0);
    const results = JSON.parse(result.stdout) as CheckResult[];
    expect(results.filter((r) => r.status !== "PASS").map((r) => r.check)).toEqual(["service"]);
  }, 60_000);

  it("the wrong password in the password file: the broker line fails with bad credentials", async () => {
    const c = cabinet(await simulatedModule(), "not-the-password");
    const result = await doctor([
      "--config",
      c.config,
      "--data-dir",
      c.dataDir,
      "--gateway-env",
      c.envFile,
      "--json",
    ]);
    expect(result.code).toBe(1);
    const broker = (JSON.parse(result.stdout) as CheckResult[]).find((r) => r.check === "broker");
    expect(broker).toMatchObject({ status: "FAIL" });
    expect(broker?.detail).toContain("the broker refuses the user name or password (CONNACK 4)");
  }, 60_000);

  it("a wrong command line is a usage error (exit 2), one line, no stack trace", async () => {
    const missing = await doctor(["--gateway-env", join(root, "no-such.env")]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(
      `greenwave: cannot read the env file ${join(root, "no-such.env")} (--gateway-env): no such file\n`,
    );
    const unknown = await doctor(["--frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown option '--frobnicate'");
  }, 30_000);
});

/** The fenced block after the `doctor-example` marker in README.md, without its `$` command lines. */
function readmeExample(): string {
  const readme = readFileSync("README.md", "utf8");
  const block = /<!-- doctor-example[^>]*-->\s*```text\n([\s\S]*?)```/.exec(readme)?.[1];
  if (!block) throw new Error("README.md has no doctor-example block");
  return block
    .split("\n")
    .filter((line) => !line.startsWith("$") && line !== "1")
    .join("\n");
}

/** Addresses, URLs, paths, sizes and numbers differ between the README's cabinet and this run. */
function normalise(text: string): string[] {
  return text
    .trim()
    .split("\n")
    .map((line) =>
      line
        .replace(/mqtts?:\/\/\S+? as /g, "URL as ")
        .replace(/\/[\w./-]+/g, "PATH")
        .replace(/\d+(\.\d+)?\s?(MB|GB)/g, "SIZE")
        .replace(/\d+/g, "N"),
    );
}
