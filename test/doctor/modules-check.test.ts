import { rmSync } from "node:fs";
import { SerialPort } from "serialport";
import { afterEach, describe, expect, it } from "vitest";
import { loadDeviceProfile, loadIntersection } from "../../gateway/config/load.js";
import { checkModules } from "../../gateway/doctor/modules-check.js";
import { freePort } from "../../simulators/fixtures/ports.js";
import { type RunningSimulator, startSimulator } from "../../simulators/io-module/simulator.js";
import { openPtyPair, type PtyPair } from "../support/pty-pair.js";
import { hasTool } from "../support/tools.js";
import { elmConfig } from "./doctor-fixture.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A simulated module (the project's simulator, in this process) on a loopback TCP port. */
async function tcpModule(
  profileFile = "config/devices/generic-do32-di32.yaml",
  rejectRegisters: number[] = [],
): Promise<RunningSimulator> {
  const { profile } = loadDeviceProfile(profileFile);
  const sim = await startSimulator({
    profile,
    unitId: profile.unitId,
    host: "127.0.0.1",
    tcpPort: 0,
    controlPort: null,
    rejectRegisters,
  });
  cleanups.push(() => sim.stop());
  return sim;
}

/** Checks elm's module at `link` (configured with `profile`), as `greenwave doctor` does. */
async function doctorOn(link: string, profile?: string, timeoutMs = 2000) {
  const fixture = elmConfig(link, profile ? { profile } : {});
  cleanups.push(() => rmSync(fixture.dir, { recursive: true, force: true }));
  const { modules } = loadIntersection(fixture.config);
  const started = performance.now();
  const results = await checkModules(modules, { configFile: fixture.config, timeoutMs });
  expect(results).toHaveLength(1);
  return { result: results[0]!, config: fixture.config, ms: performance.now() - started };
}

describe("greenwave doctor: each Modbus module answers (read only)", () => {
  it("a module of the profile: coils, inputs and both watchdog registers read, nothing written", async () => {
    const sim = await tcpModule();
    const { result } = await doctorOn(`{ tcp: "127.0.0.1:${sim.modbusPort}" }`);
    expect(result).toEqual({
      check: "module io1",
      status: "PASS",
      detail: `unit 1, profile generic-do32-di32, tcp 127.0.0.1:${sim.modbusPort} answers: coils 0–31, inputs 0–31, watchdog register 256, watchdog registers 258–259 read; its host watchdog is off now`,
      action: null,
    });
    // Read only: the module saw no write (its history holds only its start).
    expect(sim.model.history.map((h) => h.cause)).toEqual(["start"]);
    expect(sim.model.watchdogTimeoutMs).toBe(0);
  });

  it("a module that rejects the profile's watchdog register: named, with the profile and the file", async () => {
    const sim = await tcpModule(undefined, [256, 257, 258, 259]);
    const { result, config } = await doctorOn(`{ tcp: "127.0.0.1:${sim.modbusPort}" }`);
    expect(result.status).toBe("FAIL");
    expect(`${result.check} ${result.detail}: ${result.action}`).toBe(
      `module io1 (unit 1, profile generic-do32-di32, tcp 127.0.0.1:${sim.modbusPort}) rejects the watchdog register 256 (watchdog.timeoutRegister) with exception 2 ILLEGAL DATA ADDRESS: this module is not a generic-do32-di32; pick the profile that matches it in ${config}`,
    );
    expect(result.detail).not.toMatch(/stopped answering|does not answer/);
  });

  it("one missing register of the safe-state pair is named too", async () => {
    const sim = await tcpModule(undefined, [259]);
    const { result } = await doctorOn(`{ tcp: "127.0.0.1:${sim.modbusPort}" }`);
    expect(result.status).toBe("FAIL");
    expect(result.detail).toContain(
      "rejects the watchdog register 258 (watchdog.safeStateRegister) with exception 2 ILLEGAL DATA ADDRESS",
    );
  });

  it("a module that does not answer at all: its own message, address, timeout and what to check", async () => {
    const sim = await tcpModule();
    sim.model.faults.noAnswer = true;
    const { result, ms } = await doctorOn(`{ tcp: "127.0.0.1:${sim.modbusPort}" }`, undefined, 300);
    expect(result.status).toBe("FAIL");
    expect(result.detail).toBe(
      `(unit 1, profile generic-do32-di32, tcp 127.0.0.1:${sim.modbusPort}) does not answer: no answer to read coils 0–31 within 300 ms`,
    );
    expect(result.action).toContain("unit id (1 in");
    expect(result.detail).not.toContain("watchdog");
    // One retry, bounded: two timeouts and the back-off, never the gateway's fault window.
    expect(ms).toBeLessThan(1500);
  });

  it("nothing listening at the address: connection refused, with the file to fix", async () => {
    const port = await freePort();
    const { result, config } = await doctorOn(`{ tcp: "127.0.0.1:${port}" }`);
    expect(result.status).toBe("FAIL");
    expect(result.detail).toContain(`nothing listens at 127.0.0.1:${port} (connection refused)`);
    expect(result.action).toContain(config);
  });

  it("a profile without a host watchdog reads no registers, and says so", async () => {
    const sim = await tcpModule("config/devices/relay-board-16.yaml");
    const { result } = await doctorOn(`{ tcp: "127.0.0.1:${sim.modbusPort}" }`, "relay-board-16");
    expect(result.status).toBe("PASS");
    expect(result.detail).toContain("coils 0–15 read; profile relay-board-16 has no host watchdog");
  });

  it("a serial port that does not exist: the adapter and the path to check", async () => {
    const { result } = await doctorOn('{ serial: "/dev/serial/by-id/usb-nothing-here", baudRate: 115200 }');
    expect(result.status).toBe("FAIL");
    expect(result.detail).toContain("the serial port /dev/serial/by-id/usb-nothing-here does not exist");
    expect(result.action).toContain("ls -l /dev/serial/by-id/");
  });
});

describe.skipIf(!hasTool("socat", "the doctor's module check over Modbus RTU (a pty pair)"))(
  "greenwave doctor over Modbus RTU (a socat pty pair)",
  () => {
    async function rtuModule(rejectRegisters: number[]): Promise<PtyPair> {
      const pty = await openPtyPair();
      cleanups.push(() => pty.close());
      const { profile } = loadDeviceProfile("config/devices/generic-do32-di32.yaml");
      const sim = await startSimulator({
        profile,
        unitId: 1,
        host: "127.0.0.1",
        serialPath: pty.a,
        serial: { baudRate: 115_200, dataBits: 8, parity: "none", stopBits: 1 },
        controlPort: null,
        rejectRegisters,
      });
      cleanups.push(() => sim.stop());
      return pty;
    }

    it("answers over RTU", async () => {
      const pty = await rtuModule([]);
      const { result } = await doctorOn(`{ serial: "${pty.b}", baudRate: 115200 }`);
      expect(result.status).toBe("PASS");
      expect(result.detail).toContain(`serial ${pty.b} 115200 8N1 answers`);
    });

    it("a serial port another process holds (the running gateway): a WARN, not checked, nothing sent", async () => {
      const pty = await rtuModule([]);
      const gateway = new SerialPort({ path: pty.b, baudRate: 115_200, autoOpen: false });
      await new Promise<void>((resolve, reject) => gateway.open((e) => (e ? reject(e) : resolve())));
      cleanups.push(() => new Promise<void>((resolve) => gateway.close(() => resolve())));
      const { result } = await doctorOn(`{ serial: "${pty.b}", baudRate: 115200 }`);
      expect(result.status).toBe("WARN");
      expect(result.detail).toContain(
        `${pty.b} is in use by another process (the running gateway?); not checked`,
      );
      expect(result.action).toContain("systemctl stop greenwave");
    });

    it("names the rejected watchdog register over RTU too", async () => {
      const pty = await rtuModule([256]);
      const { result } = await doctorOn(`{ serial: "${pty.b}", baudRate: 115200 }`);
      expect(result.status).toBe("FAIL");
      expect(result.detail).toContain(
        "rejects the watchdog register 256 (watchdog.timeoutRegister) with exception 2 ILLEGAL DATA ADDRESS",
      );
    });
  },
);
