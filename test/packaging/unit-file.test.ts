import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { hasTool } from "../support/tools.js";

/**
 * packaging/system/greenwave.service as systemd reads it: `systemd-analyze verify` must accept it
 * without a single warning (an unknown or misspelt setting is only a warning, exit 0, and would be
 * ignored on the gateway: silently less hardening), and it must say what the field contract says.
 */
const UNIT = readFileSync(new URL("../../packaging/system/greenwave.service", import.meta.url), "utf8");
const dir = mkdtempSync(join(tmpdir(), "greenwave-unit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every `Key=value` of a section, in order (comments and blank lines dropped). */
function settings(section: string): [string, string][] {
  const body = UNIT.split(/^\[/m).find((s) => s.startsWith(`${section}]`)) ?? "";
  return body
    .split("\n")
    .slice(1)
    .filter((line) => line.trim() && !line.startsWith("#"))
    .map((line) => {
      const at = line.indexOf("=");
      return [line.slice(0, at), line.slice(at + 1)];
    });
}
const service = new Map<string, string[]>();
for (const [key, value] of settings("Service")) service.set(key, [...(service.get(key) ?? []), value]);
const one = (key: string) => service.get(key)?.join(" | ");

describe("greenwave.service", () => {
  it("passes systemd-analyze verify with no warning", () => {
    if (!hasTool("systemd-analyze", "the unit file check", "systemd")) return;
    // verify checks that ExecStart's program exists and is executable here, and /usr/bin/greenwave is
    // the package's: the copy runs a stub in its place, the rest of the line and of the unit untouched.
    // (--root=DIR would look for the program inside DIR, but then also for every unit this one
    // depends on, sysinit.target and on: a whole systemd tree to copy for one path.)
    const stub = join(dir, "greenwave");
    writeFileSync(stub, "#!/bin/sh\nexit 0\n");
    chmodSync(stub, 0o755);
    const copy = UNIT.replace(/^ExecStart=\/usr\/bin\/greenwave /m, `ExecStart=${stub} `);
    expect(copy, "the copy's ExecStart was rewritten").not.toBe(UNIT);
    const file = join(dir, "greenwave.service");
    writeFileSync(file, copy);
    const result = spawnSync("systemd-analyze", ["verify", "--man=no", file], { encoding: "utf8" });
    expect(`${result.stdout}${result.stderr}`.trim(), "systemd-analyze's complaints").toBe("");
    expect(result.status).toBe(0);
  });

  it("runs the gateway as the field contract says", () => {
    expect(one("ExecStart")).toBe(
      "/usr/bin/greenwave gateway --config /etc/greenwave/intersection.yaml --data-dir /var/lib/greenwave " +
        "--password-file /etc/greenwave/broker.secret $GREENWAVE_ARGS",
    );
    expect(one("Type")).toBe("notify");
    expect(one("NotifyAccess")).toBe("main");
    expect(one("WatchdogSec")).toBe("10");
    expect(one("Restart")).toBe("always");
    expect(one("RestartSec")).toBe("2");
    expect(one("KillSignal")).toBe("SIGTERM");
    expect(one("TimeoutStopSec")).toBe("60");
    // systemctl reload: SIGHUP, the intersection file reloaded (README, "Changing the intersection file").
    expect(one("ExecReload")).toBe("/bin/kill -HUP $MAINPID");
    expect(one("User")).toBe("greenwave");
    expect(one("SupplementaryGroups")).toBe("dialout");
    expect(one("EnvironmentFile")).toBe("-/etc/greenwave/gateway.env");
    expect(settings("Unit")).toContainEqual(["StartLimitIntervalSec", "0"]);
  });

  it("is hardened, with serial ports and the JIT still working", () => {
    expect(one("ProtectSystem")).toBe("strict");
    expect(one("ReadWritePaths")).toBe("/var/lib/greenwave");
    expect(one("CapabilityBoundingSet")).toBe("");
    expect(one("RestrictAddressFamilies")).toBe("AF_UNIX AF_INET AF_INET6");
    expect(one("DevicePolicy")).toBe("closed");
    expect(service.get("DeviceAllow")).toEqual(
      expect.arrayContaining(["char-ttyS rw", "char-ttyUSB rw", "char-ttyACM rw"]),
    );
    for (const key of [
      "NoNewPrivileges",
      "PrivateTmp",
      "ProtectHome",
      "ProtectKernelTunables",
      "ProtectKernelModules",
    ])
      expect(one(key), key).toBe("yes");
    // V8 writes machine code and runs it: this would kill Node at its first JIT compilation.
    expect(service.has("MemoryDenyWriteExecute")).toBe(false);
    // Would hide the serial ports.
    expect(service.has("PrivateDevices")).toBe(false);
  });
});
