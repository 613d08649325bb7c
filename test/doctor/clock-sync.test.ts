import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  fromChrony,
  fromKernel,
  parseAdjtimexPrint,
  parseChronyTracking,
  parseSignedSpanMs,
  parseTimedatectlShow,
  parseTimesyncStatus,
} from "../../gateway/core/clock-sync.js";
import { checkClock } from "../../gateway/doctor/clock-check.js";
import { readClockSync } from "../../gateway/shell/clock-sync.js";
import {
  type CommandResult,
  type CommandRunner,
  execFileRunner,
} from "../../gateway/shell/command-runner.js";
import { hasTool } from "../support/tools.js";
import { TIMESYNC_SYNCED } from "./doctor-fixture.js";

/*
 * The tools' outputs. Neither time daemon runs here (no systemd, no NTP), so the outputs of the
 * daemons' own states are fixtures, in the tools' exact formats:
 * - timedatectl: systemd's src/timedate/timedatectl.c. `show` prints bus properties as KEY=yes|no;
 *   `timesync-status` prints a vertical table of the last NTP sample (print_ntp_status_info), and with
 *   no sample yet only Server, Poll interval and "Packet count: 0". The synchronised sample below is a
 *   published one from a Debian machine (0.debian.pool.ntp.org), the Jitter overflow included.
 * - chronyc -c tracking: chrony's client.c process_cmd_tracking/print_report in CSV mode. The
 *   "Not synchronised" and "local stratum 10" lines were printed by chronyc 4.3 against a real chronyd
 *   (run with -x here); the one with an offset is the chronyc(1) man page's tracking example in CSV
 *   form (System time 0.000006523 s slow, Frequency 3.225 ppm slow = -3.225).
 * - "not booted with systemd", "506 Cannot talk to daemon" and the adjtimex line set were printed by
 *   the real tools on this machine (Debian bookworm: systemd 252, chrony 4.3, adjtimex 1.29).
 */
const SHOW_SYNCED = "NTP=yes\nNTPSynchronized=yes\n";
const SHOW_UNSYNCED = "NTP=yes\nNTPSynchronized=no\n";
const SHOW_NTP_OFF = "NTP=no\nNTPSynchronized=no\n";
const TIMESYNC_NO_SAMPLE = `       Server: n/a (n/a)
Poll interval: 0 (min: 32s; max 34min 8s)
 Packet count: 0
`;
const TIMESYNCD_ABSENT =
  "Command requires systemd-timesyncd.service, but it is not available: Unit dbus-org.freedesktop.timesync1.service not found.\n";
const NOT_BOOTED =
  "System has not been booted with systemd as init system (PID 1). Can't operate.\nFailed to connect to bus: Host is down\n";
const CHRONY_SYNCED_OFFSET =
  "CB00710F,foo.example.net,3,1485510557.000000000,0.000006523,-0.000006747,0.000035822,-3.225,-0.000,0.129,0.013639022,0.001100737,64.2,Normal\n";
const CHRONY_LOCAL =
  "7F7F0101,,10,1796026220.125001230,0.000000000,0.000000000,0.000000000,0.000,0.000,0.000,0.000000000,0.000000000,0.0,Normal\n";
const CHRONY_UNSYNCED =
  "00000000,,0,0.000000000,0.000000000,0.000000000,0.000000000,0.000,0.000,0.000,1.000000000,1.000000000,0.0,Not synchronised\n";
const CHRONY_NO_DAEMON = "506 Cannot talk to daemon\n";
const ADJTIMEX_UNSYNCED = `         mode: 0
       offset: 0
    frequency: 0
     maxerror: 16000000
     esterror: 16000000
       status: 64
time_constant: 2
    precision: 1
    tolerance: 32768000
         tick: 10000
     raw time:  1796026212s 536416us = 1796026212.536416
 return value = 5
`;

const ok = (stdout: string): CommandResult => ({ code: 0, stdout, stderr: "" });
const exit1 = (stderr: string): CommandResult => ({ code: 1, stdout: "", stderr });
const missing: CommandResult = { code: null, stdout: "", stderr: "spawn ENOENT", failure: "not-found" };

/** A runner that answers from a table of "command args" → result, and records what was run. */
function scripted(answers: Record<string, CommandResult>): CommandRunner & { ran: string[] } {
  const ran: string[] = [];
  const runner = async (command: string, args: readonly string[]) => {
    const line = [command, ...args].join(" ");
    ran.push(line);
    return answers[line] ?? answers[command] ?? missing;
  };
  return Object.assign(runner, { ran });
}

describe("the tools' output formats", () => {
  it("reads timedatectl show and timesync-status, spans in systemd's format", () => {
    expect(parseTimedatectlShow(SHOW_SYNCED)).toEqual({ ntpSynchronized: true, ntp: true });
    expect(parseTimedatectlShow(SHOW_NTP_OFF)).toEqual({ ntpSynchronized: false, ntp: false });
    expect(parseTimedatectlShow(NOT_BOOTED)).toBeNull();
    expect(parseTimesyncStatus(TIMESYNC_SYNCED)).toEqual({
      server: "80.249.145.122 (0.debian.pool.ntp.org)",
      packetCount: 17,
      offsetMs: -5.086,
    });
    expect(parseTimesyncStatus(TIMESYNC_NO_SAMPLE)).toEqual({
      server: "n/a (n/a)",
      packetCount: 0,
      offsetMs: null,
    });
    expect(parseSignedSpanMs("+7.493693s")).toBeCloseTo(7493.693, 6);
    expect(parseSignedSpanMs("+39us")).toBeCloseTo(0.039, 9);
    expect(parseSignedSpanMs("-1min 3.5s")).toBe(-63_500);
    expect(parseSignedSpanMs("-0")).toBe(0);
    expect(parseSignedSpanMs("n/a")).toBeNull();
  });

  it("reads chronyc -c tracking and adjtimex --print", () => {
    expect(parseChronyTracking(CHRONY_SYNCED_OFFSET)).toEqual({
      referenceId: "CB00710F",
      name: "foo.example.net",
      stratum: 3,
      systemTimeS: 0.000006523,
      leapStatus: "Normal",
    });
    expect(parseChronyTracking(CHRONY_UNSYNCED)?.leapStatus).toBe("Not synchronised");
    expect(fromChrony(parseChronyTracking(CHRONY_LOCAL)!)).toEqual({
      state: "synchronised",
      source: "chronyc",
      offsetMs: 0,
      detail: "chrony: reference 7F7F0101, stratum 10, offset +0.000 ms, leap status Normal",
    });
    expect(parseChronyTracking(CHRONY_NO_DAEMON)).toBeNull();
    expect(parseAdjtimexPrint(ADJTIMEX_UNSYNCED)).toEqual({
      status: 64,
      maxerrorUs: 16_000_000,
      esterrorUs: 16_000_000,
    });
    // The kernel's verdict is its error estimate (as timedated judges it), not STA_UNSYNC alone.
    const disciplined = ADJTIMEX_UNSYNCED.replace("maxerror: 16000000", "maxerror: 412000");
    expect(fromKernel(parseAdjtimexPrint(disciplined)!).state).toBe("synchronised");
  });
});

describe("readClockSync", () => {
  it("systemd-timesyncd synchronised: its state and the last sample's offset", async () => {
    const run = scripted({
      "timedatectl show -p NTPSynchronized -p NTP": ok(SHOW_SYNCED),
      "timedatectl timesync-status": ok(TIMESYNC_SYNCED),
    });
    const reading = await readClockSync(run);
    expect(reading).toMatchObject({ state: "synchronised", source: "timedatectl", offsetMs: -5.086 });
    expect(reading.detail).toContain("0.debian.pool.ntp.org");
    expect(run.ran).toEqual(["timedatectl show -p NTPSynchronized -p NTP", "timedatectl timesync-status"]);
    const line = checkClock(reading);
    expect(line.status).toBe("PASS");
    expect(line.detail).toContain("offset -5.086 ms");
  });

  it("systemd-timesyncd without a sample: unsynchronised, a FAIL that says how to fix it", async () => {
    const reading = await readClockSync(
      scripted({
        "timedatectl show -p NTPSynchronized -p NTP": ok(SHOW_UNSYNCED),
        "timedatectl timesync-status": ok(TIMESYNC_NO_SAMPLE),
      }),
    );
    expect(reading).toMatchObject({ state: "unsynchronised", source: "timedatectl", offsetMs: null });
    const line = checkClock(reading);
    expect(line.status).toBe("FAIL");
    expect(line.detail).toContain("the green wave needs every cabinet's clock");
    expect(line.action).toContain("timedatectl set-ntp true");
    expect(line.action).toContain("chronyc sources");
  });

  it("chrony: its own view wins over timedated's kernel flag, with the System time offset", async () => {
    // timedated says no (chrony without rtcsync leaves the kernel flag alone); chronyd is synchronised.
    const run = scripted({
      "timedatectl show -p NTPSynchronized -p NTP": ok(SHOW_UNSYNCED),
      "timedatectl timesync-status": exit1(TIMESYNCD_ABSENT),
      "chronyc -c tracking": ok(CHRONY_SYNCED_OFFSET),
    });
    const reading = await readClockSync(run);
    expect(reading).toMatchObject({ state: "synchronised", source: "chronyc" });
    expect(reading.offsetMs).toBeCloseTo(0.006523, 9);
    expect(reading.detail).toContain("foo.example.net");
    expect(checkClock(reading).status).toBe("PASS");
  });

  it("chrony not synchronised: unsynchronised", async () => {
    const reading = await readClockSync(
      scripted({ timedatectl: exit1(NOT_BOOTED), "chronyc -c tracking": ok(CHRONY_UNSYNCED) }),
    );
    expect(reading).toMatchObject({ state: "unsynchronised", source: "chronyc", offsetMs: null });
    expect(checkClock(reading).status).toBe("FAIL");
  });

  it("no systemd, no chronyd: the kernel through adjtimex", async () => {
    const run = scripted({
      timedatectl: exit1(NOT_BOOTED),
      chronyc: exit1(CHRONY_NO_DAEMON),
      "adjtimex --print": ok(ADJTIMEX_UNSYNCED),
    });
    const reading = await readClockSync(run);
    expect(reading).toMatchObject({ state: "unsynchronised", source: "adjtimex", offsetMs: null });
    expect(reading.detail).toContain("STA_UNSYNC set");
  });

  it("no tool answers: unknown, a WARN naming what each said", async () => {
    const reading = await readClockSync(
      scripted({ timedatectl: exit1(NOT_BOOTED), chronyc: exit1(CHRONY_NO_DAEMON) }),
    );
    expect(reading).toMatchObject({ state: "unknown", source: "none", offsetMs: null });
    expect(reading.detail).toContain("timedatectl: exit 1: System has not been booted with systemd");
    expect(reading.detail).toContain("chronyc: exit 1: 506 Cannot talk to daemon");
    expect(reading.detail).toContain("adjtimex: not installed");
    expect(checkClock(reading).status).toBe("WARN");
  });

  it("a synchronised clock far off: a WARN with the offset", () => {
    const line = checkClock({
      state: "synchronised",
      source: "chronyc",
      offsetMs: 812.5,
      detail: "chrony: …",
    });
    expect(line.status).toBe("WARN");
    expect(line.detail).toContain("+812.500 ms");
  });
});

describe("the production runner (real processes)", () => {
  const run = execFileRunner();

  it("a missing command is not-found, not a throw", async () => {
    expect(await run("/nonexistent/timedatectl", ["show"])).toMatchObject({
      code: null,
      failure: "not-found",
    });
  });

  it("a hung command is killed at 2 s", async () => {
    const started = performance.now();
    const result = await run("sleep", ["30"]);
    expect(result).toMatchObject({ code: null, failure: "timeout" });
    expect(performance.now() - started).toBeLessThan(4000);
  });

  it("a command that prints without end is cut at the output cap", async () => {
    expect(await run("yes", [])).toMatchObject({ code: null, failure: "output-too-large" });
  });

  it("runs with LC_ALL=C and an exit code", async () => {
    expect(await run("sh", ["-c", 'echo "$LC_ALL"; exit 3'])).toEqual({ code: 3, stdout: "C\n", stderr: "" });
  });

  it("timedatectl on this machine (no systemd): its real refusal, and an answer within the bounds", async () => {
    const started = performance.now();
    const reading = await readClockSync();
    expect(performance.now() - started).toBeLessThan(8000);
    expect(["synchronised", "unsynchronised", "unknown"]).toContain(reading.state);
    if (!existsSync("/run/systemd/system") && reading.source !== "chronyc" && reading.source !== "adjtimex")
      expect(reading.detail).toMatch(
        /timedatectl: (not installed|exit 1: System has not been booted with systemd)/,
      );
  });
});

describe.skipIf(!hasTool("adjtimex", "the kernel's clock state read through the real adjtimex tool"))(
  "the kernel's state through the real adjtimex tool",
  () => {
    it("gives a definite state with the kernel's error estimate", async () => {
      const real = execFileRunner();
      const run: CommandRunner = (command, args) =>
        command === "adjtimex" ? real(command, args) : real(`/nonexistent/${command}`, args);
      const reading = await readClockSync(run);
      expect(reading.source).toBe("adjtimex");
      expect(["synchronised", "unsynchronised"]).toContain(reading.state);
      expect(reading.detail).toMatch(/maximum error [\d.]+ (ms|s)/);
    });
  },
);

describe.skipIf(!hasTool("chronyd", "readClockSync against a real chronyd (apt-get install chrony)"))(
  "against a real chronyd (run with -x: it never touches this machine's clock)",
  () => {
    const started: ChildProcess[] = [];
    const dirs: string[] = [];
    afterAll(() => {
      for (const child of started) child.kill("SIGTERM");
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    });

    /** chronyd with `config` (plus a private command socket); chronyc is pointed at that socket. */
    async function chronyd(config: string): Promise<CommandRunner> {
      const dir = mkdtempSync(join(tmpdir(), "greenwave-chrony-")); // 0700: chronyd refuses a socket dir others can write
      dirs.push(dir);
      const socket = join(dir, "chronyd.sock");
      writeFileSync(
        join(dir, "chrony.conf"),
        `${config}\nbindcmdaddress ${socket}\ncmdport 0\nport 0\npidfile ${join(dir, "chronyd.pid")}\n`,
      );
      const child = spawn("chronyd", ["-x", "-d", "-u", "root", "-f", join(dir, "chrony.conf")], {
        stdio: "ignore",
      });
      started.push(child);
      for (let i = 0; i < 50 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 100));
      expect(existsSync(socket), "chronyd made its command socket").toBe(true);
      const real = execFileRunner();
      return (command, args) =>
        command === "chronyc"
          ? real("chronyc", ["-h", socket, ...args])
          : real(`/nonexistent/${command}`, args);
    }

    it("a chronyd with no reachable source: unsynchronised", async () => {
      const run = await chronyd("server 192.0.2.1 iburst");
      const reading = await readClockSync(run);
      expect(reading).toMatchObject({ state: "unsynchronised", source: "chronyc", offsetMs: null });
      expect(reading.detail).toContain("Not synchronised");
    });

    it("a chronyd serving its local clock (stratum 10): synchronised, offset 0", async () => {
      const run = await chronyd("local stratum 10");
      let reading = await readClockSync(run);
      for (let i = 0; i < 20 && reading.state !== "synchronised"; i++) {
        await new Promise((r) => setTimeout(r, 250));
        reading = await readClockSync(run);
      }
      expect(reading).toMatchObject({ state: "synchronised", source: "chronyc", offsetMs: 0 });
      expect(reading.detail).toContain("stratum 10");
    });
  },
);
