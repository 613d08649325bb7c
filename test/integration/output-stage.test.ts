import { afterEach, describe, expect, it } from "vitest";
import { coilsFor, type Link, type ModuleLayout, safeStateRegisters } from "../../devices/io-map.js";
import { OutputStage } from "../../devices/output-stage.js";
import { loadIntersection } from "../../gateway/config/load.js";
import { lampsFor } from "../../gateway/core/lamps.js";
import type { Aspect, Lamps } from "../../gateway/core/model.js";
import { type RunningSimulator, startSimulator } from "../../simulators/io-module/simulator.js";
import { openPtyPair, type PtyPair } from "../support/pty-pair.js";
import { hasTool } from "../support/tools.js";

// elm: M (channels 0-2), S (3-5), PS (6-7), PM (8-9) on a generic 32-channel DO/DI module.
const elm = loadIntersection("config/intersections/elm.yaml");
const intersection = elm.intersection;
const baseLayout = elm.modules[0] as ModuleLayout;
const MAIN: Aspect[] = ["green", "red", "walk", "dont-walk"];
const lamps = (aspects: Aspect[]): Lamps[] => aspects.map((a) => lampsFor(a, true));
const mono = () => performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Rig {
  sim: RunningSimulator;
  stage: OutputStage;
  layout: ModuleLayout;
  pty?: PtyPair;
}

const rigs: Rig[] = [];
afterEach(async () => {
  for (const rig of rigs.splice(0)) {
    await rig.stage.close();
    await rig.sim.stop();
    await rig.pty?.close();
  }
});

type Transport = "tcp" | "rtu";

async function rig(
  transport: Transport,
  rejectRegisters: number[] = [],
  monoNow: () => number = mono,
): Promise<Rig> {
  let sim: RunningSimulator;
  let link: Link;
  let pty: PtyPair | undefined;
  if (transport === "tcp") {
    sim = await startSimulator({
      profile: baseLayout.profile,
      unitId: 1,
      host: "127.0.0.1",
      tcpPort: 0,
      controlPort: null,
      rejectRegisters,
    });
    link = { kind: "tcp", host: "127.0.0.1", port: sim.modbusPort as number };
  } else {
    pty = await openPtyPair();
    const serial = { baudRate: 115_200, dataBits: 8 as const, parity: "none" as const, stopBits: 1 as const };
    sim = await startSimulator({
      profile: baseLayout.profile,
      unitId: 1,
      host: "127.0.0.1",
      serialPath: pty.a,
      serial,
      controlPort: null,
    });
    link = { kind: "serial", path: pty.b, serial };
  }
  const layout: ModuleLayout = {
    ...baseLayout,
    link,
    timeoutMs: 150,
    retries: 1,
    faultWindowMs: 400,
    watchdogMs: 500,
  };
  const stage = new OutputStage(intersection, [layout], monoNow);
  await stage.open();
  const made = { sim, stage, layout, ...(pty ? { pty } : {}) };
  rigs.push(made);
  return made;
}

const transports: Transport[] = hasTool("socat", "the Modbus RTU tests over a pseudo-terminal pair")
  ? ["tcp", "rtu"]
  : ["tcp"];

describe.each(transports)("output stage against the simulated module over %s", (transport) => {
  it("writes the lamps in one coil image, reads them back, and configures the host watchdog", async () => {
    const { sim, stage, layout } = await rig(transport);
    const result = await stage.exchange(lamps(MAIN));
    expect(result.errors).toEqual([]);
    expect(result.observed).toEqual(lamps(MAIN));
    expect(sim.model.coils).toEqual(coilsFor(layout, lamps(MAIN)));
    expect(sim.model.watchdogTimeoutMs).toBe(500);
    const w = layout.profile.watchdog;
    expect(sim.model.readRegisters(w?.safeStateRegister ?? 0, 2)).toEqual(safeStateRegisters(layout));
    const client = stage.modules[0]?.client;
    expect(client?.counters.failures.timeout).toBe(0);
    expect(client?.counters.ok).toBeGreaterThanOrEqual(4);
  });

  // The same path on both links: checked once, over TCP.
  it.runIf(transport === "tcp")(
    "a module that rejects the profile's watchdog register is named as the wrong module, register and profile",
    async () => {
      const timeoutRegister = baseLayout.profile.watchdog?.timeoutRegister as number;
      const { stage } = await rig("tcp", [timeoutRegister]);
      const result = await stage.exchange(lamps(MAIN));
      const message = result.errors[0]?.message ?? "";
      expect(message).toContain(`rejects the watchdog register ${timeoutRegister}`);
      expect(message).toContain(`this module is not a ${baseLayout.profile.id}`);
    },
  );

  it("reports a dark lamp and a stuck relay through the feedback", async () => {
    const { sim, stage } = await rig(transport);
    await stage.exchange(lamps(MAIN));
    sim.model.faults.dark.add(2); // M green lamp dead
    sim.model.faults.stuck.add(3); // S red relay stuck (currently on)
    const next = await stage.exchange(lamps(["yellow", "green", "dont-walk", "walk"]));
    expect(next.observed?.[0]).toEqual({ red: false, yellow: true, green: false });
    expect(next.observed?.[1]).toEqual({ red: true, yellow: false, green: true });
    const dark = await stage.exchange(lamps(MAIN));
    expect(dark.observed?.[0]).toEqual({ red: false, yellow: false, green: false });
  });

  it("counts timeouts when the module stops answering, keeps the link open, and reports it lost after the fault window", async () => {
    const { sim, stage } = await rig(transport);
    await stage.exchange(lamps(MAIN));
    sim.model.faults.noAnswer = true;
    const first = await stage.exchange(lamps(MAIN));
    expect(first.errors[0]?.failure).toBe("timeout");
    expect(first.observed).toBeNull();
    let lost = first.lost;
    const started = mono();
    while (lost.length === 0 && mono() - started < 3_000) lost = (await stage.exchange(lamps(MAIN))).lost;
    expect(lost[0]?.device).toBe("io1");
    expect(lost[0]?.detail).toContain("no answer within 150 ms");
    const client = stage.modules[0]?.client;
    expect(client?.counters.failures.timeout).toBeGreaterThanOrEqual(2);
    expect(client?.link.isOpen).toBe(true);
    expect(client?.link.reopens).toBe(0);
    // Whether its fault window (400 ms) or its watchdog (500 ms) is seen to pass first, the last error is named.
    expect(lost[0]?.detail).toMatch(/no good exchange for \d+ ms|longer than its watchdog \(500 ms\)/);
    sim.model.faults.noAnswer = false;
    const back = await stage.exchange(lamps(MAIN));
    expect(back.errors).toEqual([]);
    expect(back.lost).toEqual([]);
  });

  it("waits for a slow answer within the timeout, and times out on one beyond it", async () => {
    const { sim, stage } = await rig(transport);
    await stage.exchange(lamps(MAIN));
    sim.model.faults.slowMs = 60;
    const started = mono();
    const slow = await stage.exchange(lamps(MAIN));
    expect(slow.errors).toEqual([]);
    expect(slow.observed).toEqual(lamps(MAIN));
    expect(mono() - started).toBeGreaterThanOrEqual(2 * 60);
    sim.model.faults.slowMs = 400;
    const late = await stage.exchange(lamps(MAIN));
    expect(late.errors[0]?.failure).toBe("timeout");
  });

  it("falls to the safe state on its own when the gateway stops writing", async () => {
    const { sim, stage, layout } = await rig(transport);
    await stage.exchange(lamps(MAIN));
    expect(sim.model.inSafeState).toBe(false);
    await sleep(800);
    expect(sim.model.inSafeState).toBe(true);
    expect(sim.model.coils).toEqual(layout.safeState);
    expect(sim.model.history.at(-1)?.cause).toBe("watchdog");
    // The stall is over: the next exchange does not bring M's green back out of the safe state (it did,
    // ~100 ms later, with no fault): it reports the module lost, naming the gap and the watchdog.
    const after = await stage.exchange(lamps(MAIN));
    expect(after.lost).toHaveLength(1);
    expect(after.lost[0]?.device).toBe("io1");
    expect(after.lost[0]?.detail).toMatch(
      /no write reached it for \d+ ms, longer than its watchdog \(500 ms\)/,
    );
    expect(after.lost[0]?.detail).toContain("reset the fault");
    expect(after.observed).toBeNull();
    expect(sim.model.coils).toEqual(layout.safeState);
    expect(sim.model.history.at(-1)?.cause).toBe("watchdog");
  });

  it("a stall past the watchdog, on the stage's own clock, is reported before any write; one within it is not", async () => {
    let stalledMs = 0;
    const { sim, stage, layout } = await rig(transport, [], () => mono() + stalledMs);
    await stage.exchange(lamps(MAIN));
    // Within the watchdog (the module's timer has not run out): written as usual.
    stalledMs += 400;
    const within = await stage.exchange(lamps(MAIN));
    expect(within.lost).toEqual([]);
    expect(within.observed).toEqual(lamps(MAIN));
    const writes = sim.model.history.length;
    const yellow = lamps(["yellow", "red", "dont-walk", "dont-walk"]);
    // Past it: nothing is written (the real module would be in its safe state), and it is said once.
    stalledMs += 600;
    const past = await stage.exchange(yellow);
    expect(past.lost.map((l) => l.device)).toEqual(["io1"]);
    expect(past.lost[0]?.detail).toContain("longer than its watchdog (500 ms)");
    expect(sim.model.history.length).toBe(writes);
    expect(sim.model.coils).toEqual(coilsFor(layout, lamps(MAIN)));
    // What follows (the controller's fault flash) is written again, the watchdog configured again first.
    const next = await stage.exchange(yellow);
    expect(next.lost).toEqual([]);
    expect(next.errors).toEqual([]);
    expect(sim.model.coils).toEqual(coilsFor(layout, yellow));
  });

  it("a restart whose module drops the lamps between the start-up readback and the first write reports it, once, with what shows now", async () => {
    const { sim, stage, layout } = await rig(transport);
    await stage.exchange(lamps(MAIN));
    await stage.close(); // the process dies (its link with it)
    // The dead process's lamps, read by a new one; then the module's watchdog (500 ms) runs out.
    const restarted = new OutputStage(intersection, [layout], mono);
    rigs.push({ sim, stage: restarted, layout });
    await restarted.open();
    expect(await restarted.observe()).toEqual(lamps(MAIN));
    await sleep(800);
    expect(sim.model.inSafeState).toBe(true);
    const first = await restarted.exchange(lamps(MAIN));
    expect(first.fieldDropped?.detail).toContain("between the start-up readback and the first write");
    expect(first.lost).toEqual([]);
    // What shows now (the safe state: no green, no WALK), for the start-up to be decided again.
    expect(first.fieldDropped?.observed?.length).toBe(intersection.groups.length);
    expect(first.fieldDropped?.observed?.some((l) => l.green)).toBe(false);
    expect(sim.model.coils).toEqual(layout.safeState);
    // Within the watchdog, the same start writes as usual.
    await restarted.exchange(lamps(MAIN));
    await restarted.close();
    const again = new OutputStage(intersection, [layout], mono);
    rigs.push({ sim, stage: again, layout });
    await again.open();
    expect(await again.observe()).toEqual(lamps(MAIN));
    const ok = await again.exchange(lamps(MAIN));
    expect(ok.lost).toEqual([]);
    expect(ok.fieldDropped).toBeNull();
    expect(ok.observed).toEqual(lamps(MAIN));
  });

  it("a module without a watchdog holds its lamps: a long gap is not a drop", async () => {
    let stalledMs = 0;
    const { stage, layout } = await rig(transport, [], () => mono() + stalledMs);
    const noWatchdog = new OutputStage(
      intersection,
      [{ ...layout, profile: { ...layout.profile, watchdog: null } }],
      () => mono() + stalledMs,
    );
    await stage.close();
    await noWatchdog.open();
    try {
      await noWatchdog.exchange(lamps(MAIN));
      stalledMs += 10_000;
      const later = await noWatchdog.exchange(lamps(MAIN));
      expect(later.lost).toEqual([]);
      expect(later.observed).toEqual(lamps(MAIN));
    } finally {
      await noWatchdog.close();
    }
  });

  it.runIf(transport === "rtu")("counts a corrupted answer as a CRC error, not a timeout", async () => {
    const { sim, stage } = await rig(transport);
    await stage.exchange(lamps(MAIN));
    sim.model.faults.corruptCrc = true;
    const bad = await stage.exchange(lamps(MAIN));
    expect(bad.errors[0]?.failure).toBe("crc");
    const client = stage.modules[0]?.client;
    expect(client?.counters.failures.crc).toBeGreaterThanOrEqual(1);
    sim.model.faults.corruptCrc = false;
    const good = await stage.exchange(lamps(MAIN));
    expect(good.errors).toEqual([]);
  });

  it.runIf(transport === "tcp")(
    "reconnects when the module comes back after its connection was lost",
    async () => {
      const { sim, stage, layout } = await rig(transport);
      await stage.exchange(lamps(MAIN));
      await sim.stop();
      const down = await stage.exchange(lamps(MAIN));
      expect(down.errors[0]?.failure).toBe("link");
      const port = (layout.link as { port: number }).port;
      const again = await startSimulator({
        profile: layout.profile,
        unitId: 1,
        host: "127.0.0.1",
        tcpPort: port,
        controlPort: null,
      });
      rigs.push({ sim: again, stage: new OutputStage(intersection, [], mono), layout });
      const started = mono();
      let result = await stage.exchange(lamps(MAIN));
      // Down for longer than its watchdog, the module is reported as having dropped the lamps, once.
      while ((result.errors.length > 0 || result.lost.length > 0) && mono() - started < 5_000) {
        await sleep(100);
        result = await stage.exchange(lamps(MAIN));
      }
      expect(result.errors).toEqual([]);
      expect(stage.modules[0]?.client.link.reopens).toBeGreaterThanOrEqual(1);
      expect(again.model.coils).toEqual(coilsFor(layout, lamps(MAIN)));
    },
  );
});
