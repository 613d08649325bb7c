import { describe, expect, it } from "vitest";
import { checkService } from "../../gateway/doctor/service-check.js";
import { type CommandRunner, execFileRunner } from "../../gateway/shell/command-runner.js";

/**
 * `systemctl show -p LoadState,ActiveState,SubState,NRestarts,Result greenwave.service` prints one
 * KEY=value line per property (systemctl(1), "show"); the values are systemd's unit states and
 * service results (systemd.exec(5) $SERVICE_RESULT: success, exit-code, signal, core-dump, watchdog,
 * start-limit-hit, timeout…); `systemctl is-system-running` prints the manager's state ("running",
 * "degraded"…, "offline" without systemd as PID 1). systemd does not run here, so its answers are
 * fixtures; the machine's own systemctl is asked in the first test.
 */
function systemd(show: string, system = "running"): CommandRunner & { ran: string[] } {
  const ran: string[] = [];
  const run: CommandRunner = async (command, args) => {
    ran.push([command, ...args].join(" "));
    if (args[0] === "is-system-running") return { code: 0, stdout: `${system}\n`, stderr: "" };
    return { code: 0, stdout: show, stderr: "" };
  };
  return Object.assign(run, { ran });
}

describe("greenwave doctor: the service", () => {
  it("this machine's real systemctl: without systemd as init it says offline, a WARN", async (context) => {
    const real = await execFileRunner()("systemctl", ["is-system-running"]);
    if (real.failure !== "not-found" && real.stdout.trim() !== "offline") return context.skip(); // systemd runs here
    const result = await checkService(execFileRunner());
    expect(result).toMatchObject({ check: "service", status: "WARN" });
    expect(result.detail).toContain("no systemd here");
  });

  it("running, never restarted: PASS", async () => {
    const run = systemd(
      "LoadState=loaded\nActiveState=active\nSubState=running\nNRestarts=0\nResult=success\n",
    );
    expect(await checkService(run)).toEqual({
      check: "service",
      status: "PASS",
      detail: "greenwave.service is active (running), no restarts",
      action: null,
    });
    expect(run.ran).toEqual([
      "systemctl is-system-running",
      "systemctl show -p LoadState,ActiveState,SubState,NRestarts,Result greenwave.service",
    ]);
  });

  it("running after restarts (the watchdog): a WARN that says where to look", async () => {
    const result = await checkService(
      systemd("LoadState=loaded\nActiveState=active\nSubState=running\nNRestarts=3\nResult=watchdog\n"),
    );
    expect(result.status).toBe("WARN");
    expect(result.detail).toBe(
      "greenwave.service is active (running), but systemd restarted it 3 times (last result: watchdog)",
    );
    expect(result.action).toContain("journalctl -u greenwave -b");
  });

  it("failed: FAIL with its result", async () => {
    const result = await checkService(
      systemd("LoadState=loaded\nActiveState=failed\nSubState=failed\nNRestarts=5\nResult=start-limit-hit\n"),
    );
    expect(result.status).toBe("FAIL");
    expect(result.detail).toBe(
      "greenwave.service is failed (failed), last result: start-limit-hit, restarts: 5",
    );
  });

  it("stopped cleanly (before the first enable --now): a WARN saying how to start it", async () => {
    const result = await checkService(
      systemd("LoadState=loaded\nActiveState=inactive\nSubState=dead\nNRestarts=0\nResult=success\n"),
    );
    expect(result).toMatchObject({
      status: "WARN",
      action: "start it once the checks pass: systemctl enable --now greenwave",
    });
  });

  it("restarting in a loop: a WARN to look again", async () => {
    const result = await checkService(
      systemd(
        "LoadState=loaded\nActiveState=activating\nSubState=auto-restart\nNRestarts=2\nResult=exit-code\n",
      ),
    );
    expect(result.status).toBe("WARN");
    expect(result.detail).toContain("activating (auto-restart)");
  });

  it("the unit not installed: a WARN to install the package", async () => {
    const result = await checkService(
      systemd("LoadState=not-found\nActiveState=inactive\nSubState=dead\nNRestarts=0\nResult=success\n"),
    );
    expect(result).toMatchObject({ status: "WARN", detail: "greenwave.service is not installed" });
  });

  it("degraded system: the service is still read", async () => {
    const run = systemd(
      "LoadState=loaded\nActiveState=active\nSubState=running\nNRestarts=0\nResult=success\n",
      "degraded",
    );
    expect((await checkService(run)).status).toBe("PASS");
  });

  it("systemctl missing: a WARN", async () => {
    const result = await checkService(execFileRunnerWithout("systemctl"));
    expect(result).toMatchObject({ status: "WARN" });
    expect(result.detail).toContain("systemctl is not installed");
  });
});

/** The real runner, with `command` looked up where it does not exist (a real ENOENT). */
function execFileRunnerWithout(command: string): CommandRunner {
  const real = execFileRunner();
  return (cmd, args) => real(cmd === command ? `/nonexistent/${cmd}` : cmd, args);
}
