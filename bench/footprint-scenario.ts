import { cpSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import { footprintFigures, type Figures, type Sample } from "./footprint-figures.js";
import { watchGateway, type GatewayWatcher, type MqttTraffic } from "./footprint-mqtt.js";
import { mountOf, type MountInfo, readProc } from "./footprint-proc.js";
import {
  type CliProcess,
  ownNotifySocket,
  sleep,
  startCli,
  stopCli,
  untilLine,
} from "./footprint-processes.js";
import { traceWrites, type TraceSummary } from "./footprint-trace.js";

/**
 * One footprint run: a simulated I/O module and one `greenwave gateway` on the shipped example
 * intersection (elm of config/, 80 s cycle), under a notify socket as the installed unit runs it,
 * with or without a broker; sampled every interval, then traced for a while, stopped and its store
 * read.
 */

export interface ScenarioSpec {
  readonly name: string;
  /** With a broker of its own (`greenwave broker`), or stand-alone. */
  readonly broker: boolean;
  /** An operator's status command this often (each one a forced audit event), or null. */
  readonly pingEveryMs: number | null;
}

export interface RunOptions {
  readonly durationMs: number;
  readonly intervalMs: number;
  readonly warmupMs: number;
  readonly traceS: number;
  /** A directory on the disk to measure; each scenario gets its own directory below it. */
  readonly dataRoot: string;
}

export interface ScenarioResult {
  readonly name: string;
  readonly broker: boolean;
  readonly pingEveryMs: number | null;
  readonly dataDir: string;
  readonly filesystem: MountInfo;
  readonly coldStart: {
    /**
     * Spawn of the gateway to its first safe output on the module: the earlier of the two below. The
     * module records changes only: a first write that falls in the dark half of the start-up flash
     * (all lamps off, as the module already is) shows only at the next lit half, up to half a flash
     * period later; READY=1 is sent once the module acknowledged that first write.
     */
    readonly firstSafeOutputMs: number;
    /** Spawn to the module's first recorded output change (GET /history, first `write` entry). */
    readonly firstRecordedChangeMs: number;
    /** Spawn to READY=1 on the notify socket (after the module acknowledged the start-up flash). */
    readonly readyMs: number | null;
  };
  readonly figures: Figures;
  readonly samples: readonly Sample[];
  readonly trace: TraceSummary | { readonly skipped: string } | null;
  /** write_bytes during the trace window (strace slows the process: not part of the figures). */
  readonly traceWindowWriteBytes: number | null;
  readonly mqtt: MqttTraffic | null;
  readonly metrics: Record<string, number>;
  readonly store: StoreContents | null;
  readonly notifyMessages: number;
}

const INTERSECTION = "elm";
const CORRIDOR = "main-street";
const STORE_FILES = ["gateway.db", "gateway.db-wal", "gateway.db-shm", "latch.rec"];
const METRICS = [
  "greenwave_ticks_total",
  "greenwave_ticks_missed_total",
  "greenwave_outbox_depth",
  "greenwave_outbox_dropped",
  "greenwave_mqtt_connected",
  "greenwave_mqtt_reconnects_total",
  "greenwave_commands_total",
  "greenwave_modbus_errors_total",
];

/**
 * Runs one scenario. `coldStarted` is called once the cold start is measured (or the start failed),
 * so that the caller can start the next scenario without two start-ups sharing the CPU.
 */
export async function runScenario(
  spec: ScenarioSpec,
  options: RunOptions,
  coldStarted: () => void,
): Promise<ScenarioResult> {
  let released = false;
  const release = () => {
    if (!released) coldStarted();
    released = true;
  };
  const dir = resolve(options.dataRoot, spec.name);
  mkdirSync(dir, { recursive: true });
  const started: CliProcess[] = [];
  let watcher: GatewayWatcher | null = null;
  let notify: ReturnType<typeof ownNotifySocket> | null = null;
  try {
    let brokerUrl: string | null = null;
    if (spec.broker) {
      // One broker per scenario: two gateways of the same intersection on one broker would share a
      // client id and take the session from each other.
      const broker = startCli(["broker", "--host", "127.0.0.1", "--port", "0"]);
      started.push(broker);
      brokerUrl = (await untilLine(broker, "the broker", 10_000, (l) => l.msg === "broker listening"))
        .url as string;
    }
    const sim = startCli(["sim", "io-module", "--tcp", "0", "--control", "0"]);
    started.push(sim);
    const listening = await untilLine(sim, "the simulated module", 10_000, (l) => l.event === "listening");
    const control = listening.control as string;
    const config = writeConfig(dir, listening.modbusPort as number);
    const dataDir = join(dir, "data");
    mkdirSync(dataDir, { recursive: true });
    notify = ownNotifySocket(join(dir, "notify"));
    // Subscribed before the gateway starts: its start-up events count too.
    if (brokerUrl) watcher = await watchGateway(brokerUrl, CORRIDOR, INTERSECTION);
    const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: join(dir, "notify"), WATCHDOG_USEC: "10000000" };
    const gateway = startCli(
      [
        "gateway",
        "--config",
        config,
        "--data-dir",
        dataDir,
        "--http",
        "127.0.0.1:0",
        ...(brokerUrl ? ["--broker", brokerUrl] : []),
      ],
      env,
    );
    started.push(gateway);
    let firstRecordedChangeMs: number;
    try {
      firstRecordedChangeMs = (await untilFirstWrite(control, gateway)) - gateway.spawnedAtMs;
    } finally {
      release();
    }
    const readyAt = await waitFor(5000, () => notify?.readyAtMs() ?? null);
    const readyMs = readyAt === null ? null : readyAt - gateway.spawnedAtMs;
    const startedLine = await untilLine(gateway, "the gateway", 30_000, (l) => l.msg === "gateway started");
    if (spec.pingEveryMs !== null) watcher?.ping(spec.pingEveryMs);

    const samples: Sample[] = [];
    for (let k = 1; k * options.intervalMs <= options.durationMs; k++) {
      await sleep(gateway.spawnedAtMs + k * options.intervalMs - Date.now());
      const proc = readProc(gateway.pid);
      if (!proc) throw new Error(`the gateway exited during the run:\n${gateway.text}`);
      samples.push({
        tMs: Date.now() - gateway.spawnedAtMs,
        ...proc,
        logBytes: gateway.outputBytes,
        files: fileSizes(join(dataDir, INTERSECTION)),
      });
    }

    let trace: ScenarioResult["trace"] = null;
    let traceWindowWriteBytes: number | null = null;
    if (options.traceS > 0) {
      const before = readProc(gateway.pid);
      const traced = await traceWrites(gateway.pid, options.traceS);
      const after = readProc(gateway.pid);
      trace = typeof traced === "string" ? { skipped: traced } : traced;
      if (before && after) traceWindowWriteBytes = after.writeBytes - before.writeBytes;
    }
    const metrics = await scrapeMetrics(startedLine.http as string | null);
    const mqtt = watcher?.traffic ?? null;
    await watcher?.close();
    watcher = null;
    await stopCli(gateway);
    const store = readStore(join(dataDir, INTERSECTION, "gateway.db"));
    return {
      name: spec.name,
      broker: spec.broker,
      pingEveryMs: spec.pingEveryMs,
      dataDir,
      filesystem: mountOf(dataDir),
      coldStart: {
        firstSafeOutputMs: Math.min(firstRecordedChangeMs, readyMs ?? Infinity),
        firstRecordedChangeMs,
        readyMs,
      },
      figures: footprintFigures(
        samples,
        options.warmupMs,
        (store?.eventTimesMs ?? []).map((t) => t - gateway.spawnedAtMs),
      ),
      samples,
      trace,
      traceWindowWriteBytes,
      mqtt,
      metrics,
      store,
      notifyMessages: notify.messages(),
    };
  } finally {
    release();
    await watcher?.close();
    for (const proc of started.reverse()) await stopCli(proc);
    notify?.close();
  }
}

/**
 * The shipped example configuration (corridor, plans, device profiles, intersections) copied beside
 * the run, elm's module pointed at the simulator.
 */
function writeConfig(dir: string, modbusPort: number): string {
  const config = join(dir, "config");
  for (const part of ["corridor.yaml", "plans", "devices", "intersections"])
    cpSync(resolve("config", part), join(config, part), { recursive: true });
  const file = join(config, "intersections", `${INTERSECTION}.yaml`);
  const text = readFileSync(file, "utf8");
  const linked = text.replace(/link: \{ tcp: "[^"]+" \}/, `link: { tcp: "127.0.0.1:${modbusPort}" }`);
  if (linked === text) throw new Error(`${file}: no tcp link to point at the simulator`);
  writeFileSync(file, linked);
  return file;
}

interface HistoryEntry {
  readonly t: number;
  readonly cause: string;
}

/** Wall time of the module's first output change written by the gateway (entry 0 is the module's own start). */
async function untilFirstWrite(control: string, gateway: CliProcess): Promise<number> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { entries } = (await (await fetch(`${control}/history`)).json()) as { entries: HistoryEntry[] };
    const first = entries.find((e) => e.cause === "write");
    if (first) return first.t;
    if (gateway.child.exitCode !== null)
      throw new Error(`the gateway exited before its first output:\n${gateway.text}`);
    if (Date.now() > deadline) throw new Error(`no output from the gateway within 60 s:\n${gateway.text}`);
    await sleep(10);
  }
}

async function waitFor<T>(ms: number, probe: () => T | null): Promise<T | null> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== null || Date.now() > deadline) return value;
    await sleep(20);
  }
}

function fileSizes(dir: string): Record<string, number> {
  const sizes: Record<string, number> = {};
  for (const name of STORE_FILES) {
    try {
      sizes[name] = statSync(join(dir, name)).size;
    } catch {
      // not there (yet): the WAL and its index exist only while the store is open
    }
  }
  return sizes;
}

/** A few of the gateway's own counters, summed over their labels. */
async function scrapeMetrics(http: string | null): Promise<Record<string, number>> {
  if (!http) return {};
  const text = await (await fetch(`${http}/metrics`)).text();
  const values: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const match = /^(\w+)(?:\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (match && METRICS.includes(match[1] as string))
      values[match[1] as string] = (values[match[1] as string] ?? 0) + Number(match[2]);
  }
  return values;
}

export interface StoreContents {
  readonly fileBytes: number;
  readonly eventsByType: Record<string, number>;
  /** When each event was written (wall ms), the newest 10,000. */
  readonly eventTimesMs: readonly number[];
  readonly outboxRows: number;
  readonly counters: Record<string, string>;
}

/** What the gateway left in its store, read after it stopped. */
function readStore(file: string): StoreContents | null {
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch {
    return null;
  }
  try {
    const rows = db.prepare("SELECT type, count(*) AS n FROM events GROUP BY type").all() as {
      type: string;
      n: number;
    }[];
    const meta = db.prepare("SELECT key, value FROM meta").all() as { key: string; value: string }[];
    return {
      fileBytes: statSync(file).size,
      eventsByType: Object.fromEntries(rows.map((r) => [r.type, r.n])),
      eventTimesMs: (
        db.prepare("SELECT at_wall_ms AS t FROM events ORDER BY seq DESC LIMIT 10000").all() as {
          t: number;
        }[]
      ).map((r) => r.t),
      outboxRows: (db.prepare("SELECT count(*) AS n FROM outbox").get() as { n: number }).n,
      counters: Object.fromEntries(meta.filter((m) => /^\d+$/.test(m.value)).map((m) => [m.key, m.value])),
    };
  } finally {
    db.close();
  }
}
