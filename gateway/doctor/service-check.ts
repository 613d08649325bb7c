import { type CommandRunner, whyNoAnswer } from "../shell/command-runner.js";
import { type CheckResult, fail, pass, warn } from "./check-result.js";

export const SERVICE_UNIT = "greenwave.service";

/**
 * The service's state as systemd keeps it. Without systemd (a laptop without the package, a container,
 * a chroot) there is no service to check: a warning, not a failure. Whether systemd runs is asked with
 * `systemctl is-system-running`, which prints "offline" when systemd is not the system manager
 * (systemctl(1)); everything goes through the runner port, so tests feed systemd's answers.
 */
export async function checkService(run: CommandRunner): Promise<CheckResult> {
  const system = await run("systemctl", ["is-system-running"]);
  if (system.failure === "not-found")
    return warn(
      "service",
      "no systemd here (systemctl is not installed): the service cannot be checked",
      null,
    );
  if (system.stdout.trim() === "offline")
    return warn(
      "service",
      "no systemd here (not booted with systemd: a container, a chroot?): the service cannot be checked",
      "on the gateway itself: systemctl status greenwave",
    );
  const result = await run("systemctl", [
    "show",
    "-p",
    "LoadState,ActiveState,SubState,NRestarts,Result",
    SERVICE_UNIT,
  ]);
  if (result.code !== 0)
    return warn("service", `systemctl cannot say: ${whyNoAnswer(result)}`, "systemctl status greenwave");
  const p = properties(result.stdout);
  const state = `${p.get("ActiveState") ?? "?"} (${p.get("SubState") ?? "?"})`;
  const restarts = Number(p.get("NRestarts") ?? 0);
  const outcome = p.get("Result") ?? "?";
  if (p.get("LoadState") === "not-found")
    return warn(
      "service",
      `${SERVICE_UNIT} is not installed`,
      "install the package (dpkg -i greenwave_<version>_<arch>.deb), which installs and enables the unit",
    );
  switch (p.get("ActiveState")) {
    case "active":
      if (restarts > 0)
        return warn(
          "service",
          `${SERVICE_UNIT} is ${state}, but systemd restarted it ${restarts} time${restarts === 1 ? "" : "s"} (last result: ${outcome})`,
          "find why in journalctl -u greenwave -b (a crash, or the watchdog: ticks late or modules silent)",
        );
      return pass("service", `${SERVICE_UNIT} is ${state}, no restarts`);
    case "inactive":
      if (outcome === "success")
        return warn(
          "service",
          `${SERVICE_UNIT} is ${state}`,
          "start it once the checks pass: systemctl enable --now greenwave",
        );
      return fail(
        "service",
        `${SERVICE_UNIT} is ${state}, last result: ${outcome}`,
        "find why in journalctl -u greenwave -b, fix it, then systemctl restart greenwave",
      );
    case "activating":
    case "reloading":
      return warn(
        "service",
        `${SERVICE_UNIT} is ${state} (restarts so far: ${restarts}, last result: ${outcome})`,
        "run the doctor again in a minute; if it keeps restarting, journalctl -u greenwave -b says why",
      );
    default:
      return fail(
        "service",
        `${SERVICE_UNIT} is ${state}, last result: ${outcome}, restarts: ${restarts}`,
        "find why in journalctl -u greenwave -b, fix it, then systemctl reset-failed greenwave && systemctl restart greenwave",
      );
  }
}

function properties(stdout: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) values.set(line.slice(0, at), line.slice(at + 1).trim());
  }
  return values;
}
