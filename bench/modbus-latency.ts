import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Link, ModuleLayout, SerialSettings } from "../devices/io-map.js";
import { OutputStage } from "../devices/output-stage.js";
import { loadIntersection } from "../gateway/config/load.js";
import { lampsFor } from "../gateway/core/lamps.js";
import type { Aspect, Lamps } from "../gateway/core/model.js";
import { startSimulator } from "../simulators/io-module/simulator.js";
import { type BenchResult, elapsedMs, summarize } from "./stats.js";

/**
 * Tick to confirmed write: one FC15 of the module's 32 coils and one FC02 of its 32 lamp inputs, as
 * the output stage does every tick, against the simulated module over Modbus TCP and over RTU
 * through a socat pseudo-terminal pair.
 *
 * A pty moves bytes at memory speed whatever baud rate is set, so over RTU the measured time is the
 * software's own cost (master, simulator, kernel). On a real line the exchange costs the wire time
 * plus that; the ratio reported is (wire + measured) / wire.
 */
const EXCHANGES = 400;
const WARMUP = 40;

/** Bytes on the wire for one tick: FC15 request 13 + response 8, FC02 request 8 + response 9 (32 channels). */
const FRAME_BYTES = [13, 8, 8, 9] as const;

export function wireTimeMs(baud: number): number {
  const bits = 11; // start + 8 data + parity or second stop + stop
  const bytes = FRAME_BYTES.reduce((a, b) => a + b, 0);
  const gaps = FRAME_BYTES.length * 3.5; // the 3.5-character silence that ends each RTU frame
  return ((bytes + gaps) * bits * 1000) / baud;
}

const elm = loadIntersection("config/intersections/elm.yaml");
const base = elm.modules[0] as ModuleLayout;
const MAIN: Aspect[] = ["green", "red", "walk", "dont-walk"];
const SIDE: Aspect[] = ["red", "green", "dont-walk", "walk"];
const frames: Lamps[][] = [MAIN, SIDE].map((a) => a.map((x) => lampsFor(x, true)));

async function measure(
  link: Link,
  simulatorSerial?: { path: string; serial: SerialSettings },
): Promise<number[]> {
  const sim = await startSimulator({
    profile: base.profile,
    unitId: 1,
    host: "127.0.0.1",
    ...(simulatorSerial
      ? { serialPath: simulatorSerial.path, serial: simulatorSerial.serial }
      : { tcpPort: 0 }),
    controlPort: null,
  });
  const target: Link = link.kind === "tcp" ? { ...link, port: sim.modbusPort as number } : link;
  const stage = new OutputStage(
    elm.intersection,
    [{ ...base, link: target, timeoutMs: 500, retries: 0 }],
    () => performance.now(),
  );
  await stage.open();
  const times: number[] = [];
  try {
    for (let i = 0; i < WARMUP + EXCHANGES; i++) {
      const start = process.hrtime.bigint();
      const result = await stage.exchange(frames[i % 2] as Lamps[]);
      const ms = elapsedMs(start);
      if (result.errors.length > 0) throw new Error(`exchange failed: ${result.errors[0]?.message}`);
      if (i >= WARMUP) times.push(ms);
    }
  } finally {
    await stage.close();
    await sim.stop();
  }
  return times;
}

async function ptyPair(): Promise<{ a: string; b: string; close(): void } | null> {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-bench-"));
  const a = join(dir, "a");
  const b = join(dir, "b");
  const socat = spawn("socat", [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: "ignore" });
  const failed = await new Promise<boolean>((resolve) => {
    socat.once("error", () => resolve(true));
    const poll = setInterval(() => {
      if (existsSync(a) && existsSync(b)) {
        clearInterval(poll);
        resolve(false);
      }
    }, 20);
  });
  if (failed) return null;
  return {
    a,
    b,
    close() {
      socat.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function benchModbusLatency(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const tcp = await measure({ kind: "tcp", host: "127.0.0.1", port: 0 });
  results.push(summarize("modbus: tick to confirmed write, TCP loopback", "ms", tcp));
  for (const baud of [9600, 115_200]) {
    const pty = await ptyPair();
    if (!pty) {
      process.stderr.write("socat is not installed: skipping the RTU latency benchmark\n");
      break;
    }
    try {
      const serial: SerialSettings = { baudRate: baud, dataBits: 8, parity: "none", stopBits: 1 };
      const times = await measure({ kind: "serial", path: pty.b, serial }, { path: pty.a, serial });
      const wire = wireTimeMs(baud);
      const r = summarize(`modbus: tick to confirmed write, RTU ${baud} baud (pty)`, "ms", times, {
        wireTimeMs: Number(wire.toFixed(3)),
      });
      results.push({
        ...r,
        extra: {
          ...r.extra,
          ratioMedian: Number(((wire + r.median) / wire).toFixed(3)),
          ratioP99: Number(((wire + r.p99) / wire).toFixed(3)),
        },
      });
    } finally {
      pty.close();
    }
  }
  return results;
}
