import { describe, expect, it } from "vitest";
import { HealthGate } from "../../gateway/release/health-gate.js";
import { takeLock } from "../../gateway/release/lock.js";
import { readEnvFile, splitArgs } from "../../gateway/release/env-file.js";
import { parseShow, systemdEvents } from "../../gateway/release/systemd-events.js";
import { checkEntries, type TarEntry } from "../../gateway/release/tarball.js";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const BOUNDS = { readyWithinMs: 10_000, settleMs: 5_000, maxCrashes: 3 };

describe("the health gate (pure)", () => {
  it("passes a release that is READY within the bound and stays up through the settle window", () => {
    const gate = new HealthGate(BOUNDS, 1_000);
    gate.observe({ kind: "ready" }, 3_000);
    expect(gate.verdict(7_999).outcome).toBe("pending");
    expect(gate.verdict(8_000)).toEqual({ outcome: "passed", readyAfterMs: 2_000, crashes: 0 });
  });

  it("fails one that is not READY within the bound, quoting its last status and crashes", () => {
    const gate = new HealthGate(BOUNDS, 0);
    gate.observe({ kind: "status", text: "start-up flash: module io1 not answering" }, 100);
    gate.observe({ kind: "exited", how: "exit status 70" }, 2_000);
    expect(gate.verdict(9_999).outcome).toBe("pending");
    const verdict = gate.verdict(10_000);
    expect(verdict).toMatchObject({ outcome: "failed", crashes: 1 });
    expect(verdict.outcome === "failed" && verdict.why).toBe(
      'it did not report READY within 10 s of its start (1 crash, the last: exit status 70; its last status: "start-up flash: module io1 not answering")',
    );
  });

  it("fails at the Nth crash, before or after READY, without waiting for a bound", () => {
    const gate = new HealthGate(BOUNDS, 0);
    gate.observe({ kind: "ready" }, 500);
    gate.observe({ kind: "exited", how: "killed by SIGSEGV" }, 1_000);
    gate.observe({ kind: "ready" }, 1_500);
    gate.observe({ kind: "exited", how: "killed by SIGSEGV" }, 2_000);
    expect(gate.verdict(2_100).outcome).toBe("pending");
    gate.observe({ kind: "exited", how: "exit status 1" }, 2_500);
    const verdict = gate.verdict(2_501);
    expect(verdict.outcome === "failed" && verdict.why).toMatch(
      /^it crashed 3 times within 2\.5 s of its start/,
    );
  });

  it("a release down when the settle window ends has the READY bound from its crash to come back", () => {
    const gate = new HealthGate(BOUNDS, 0);
    gate.observe({ kind: "ready" }, 1_000);
    gate.observe({ kind: "exited", how: "exit status 1" }, 5_500);
    expect(gate.verdict(6_000).outcome).toBe("pending"); // settle over, but down: waits
    gate.observe({ kind: "ready" }, 7_000);
    expect(gate.verdict(7_001)).toMatchObject({ outcome: "passed", crashes: 1 });

    const never = new HealthGate(BOUNDS, 0);
    never.observe({ kind: "ready" }, 1_000);
    never.observe({ kind: "exited", how: "exit status 1" }, 5_500);
    expect(never.verdict(15_499).outcome).toBe("pending");
    expect(never.verdict(15_500)).toMatchObject({ outcome: "failed" });
  });

  it("fails at once when the service manager gives up", () => {
    const gate = new HealthGate(BOUNDS, 0);
    gate.observe({ kind: "ready" }, 100);
    gate.observe({ kind: "gave-up", why: "systemd gave up on it" }, 200);
    expect(gate.verdict(201)).toMatchObject({ outcome: "failed", why: "systemd gave up on it" });
  });
});

describe("systemd's readings as gate events", () => {
  const show = (fields: Record<string, string | number>) =>
    parseShow(
      Object.entries(fields)
        .map(([k, v]) => `${k}=${v}`)
        .join("\n"),
    );
  const stopped = show({
    ActiveState: "inactive",
    SubState: "dead",
    NRestarts: 0,
    Result: "success",
    ExecMainStatus: 0,
    StatusText: "",
  });

  it("READY is ActiveState=active (Type=notify); a crash is a rise of NRestarts, however brief", () => {
    const starting = show({
      ActiveState: "activating",
      SubState: "start",
      NRestarts: 0,
      Result: "success",
      ExecMainStatus: 0,
      StatusText: "start-up flash",
    });
    expect(systemdEvents(stopped, starting)).toEqual([{ kind: "status", text: "start-up flash" }]);
    const ready = show({
      ActiveState: "active",
      SubState: "running",
      NRestarts: 0,
      Result: "success",
      ExecMainStatus: 0,
      StatusText: "start-up flash",
    });
    expect(systemdEvents(starting, ready)).toEqual([{ kind: "ready" }]);
    // Crashed twice between two polls and READY again: two exits, then READY.
    const again = show({
      ActiveState: "active",
      SubState: "running",
      NRestarts: 2,
      Result: "exit-code",
      ExecMainStatus: 70,
      StatusText: "start-up flash",
    });
    expect(systemdEvents(ready, again)).toEqual([
      { kind: "exited", how: "exit status 70" },
      { kind: "exited", how: "exit status 70" },
      { kind: "ready" },
    ]);
  });

  it("a watchdog kill and a failed unit are named", () => {
    const restarting = show({
      ActiveState: "activating",
      SubState: "auto-restart",
      NRestarts: 1,
      Result: "watchdog",
      ExecMainStatus: 6,
      StatusText: "",
    });
    expect(systemdEvents(stopped, restarting)[0]).toMatchObject({ how: expect.stringContaining("watchdog") });
    const failed = show({
      ActiveState: "failed",
      SubState: "failed",
      NRestarts: 1,
      Result: "start-limit-hit",
      ExecMainStatus: 1,
      StatusText: "",
    });
    expect(systemdEvents(restarting, failed)).toEqual([
      { kind: "gave-up", why: "systemd gave up on it: the unit failed (Result=start-limit-hit, status 1)" },
    ]);
  });
});

describe("release tarball entries", () => {
  const entry = (name: string, type = "-", link: string | null = null): TarEntry => ({
    type,
    name,
    size: 10,
    link,
  });
  const ok = [entry("greenwave-1.2.3/", "d"), entry("greenwave-1.2.3/release.json")];

  it("takes the version from the top directory; links inside the release are fine", () => {
    expect(
      checkEntries([...ok, entry("greenwave-1.2.3/node/bin/npm", "l", "../lib/npm-cli.js")], "t.tgz"),
    ).toBe("1.2.3");
    expect(checkEntries([entry("./", "d"), entry("./greenwave-1.2.3/release.json")], "t.tgz")).toBe("1.2.3");
  });

  it.each([
    [entry("/etc/passwd"), "is an absolute path"],
    [entry("greenwave-1.2.3/../../etc/cron.d/x"), 'has a ".." component'],
    [entry("other/x"), "is outside the top directory greenwave-1.2.3/"],
    [entry("greenwave-1.2.3/dev", "c"), 'is of type "c"'],
    [entry("greenwave-1.2.3/etc", "l", "/etc"), "is a link to /etc, outside the release"],
    [entry("greenwave-1.2.3/up", "l", "../../x"), "is a link to ../../x, outside the release"],
    [entry("greenwave-1.2.3/h", "h", "/etc/shadow"), "is a hard link to /etc/shadow"],
  ])("refuses %j", (bad, why) => {
    expect(() => checkEntries([...ok, bad], "t.tgz")).toThrow(why);
  });

  it("refuses a top directory that is not greenwave-<version>", () => {
    expect(() => checkEntries([entry("release/x")], "t.tgz")).toThrow("not greenwave-<version>/");
    expect(() => checkEntries([entry("greenwave-1.0;rm/x")], "t.tgz")).toThrow("is not a release version");
  });
});

describe("the unit's environment file, for the direct service manager", () => {
  it("reads KEY=value lines as systemd does, and splits $GREENWAVE_ARGS at whitespace", () => {
    const file = join(mkdtempSync(join(tmpdir(), "greenwave-env-")), "gateway.env");
    writeFileSync(
      file,
      '# the broker\nGREENWAVE_BROKER_URL=mqtts://broker:8883\nGREENWAVE_ARGS="--username gw-elm  --http 127.0.0.1:9100"\n; old\nBAD LINE\n',
    );
    const env = readEnvFile(file);
    expect(env).toEqual({
      GREENWAVE_BROKER_URL: "mqtts://broker:8883",
      GREENWAVE_ARGS: "--username gw-elm  --http 127.0.0.1:9100",
    });
    expect(splitArgs(env.GREENWAVE_ARGS)).toEqual(["--username", "gw-elm", "--http", "127.0.0.1:9100"]);
  });
});

describe("one activation at a time", () => {
  it("a second activation is refused while the first runs; a lock left by a dead process is taken over", () => {
    const file = join(mkdtempSync(join(tmpdir(), "greenwave-lock-")), "release.lock");
    const release = takeLock(file);
    expect(() => takeLock(file)).toThrow(`another activation (pid ${process.pid}) is running`);
    release();
    // A pid no process has (above the kernel's pid_max): the holder died in a power cut.
    writeFileSync(file, "4194305\n");
    const again = takeLock(file);
    expect(readFileSync(file, "utf8")).toBe(`${process.pid}\n`);
    again();
  });
});
