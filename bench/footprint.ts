import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { hasProcIo, MEMORY_FILESYSTEMS, mountOf } from "./footprint-proc.js";
import {
  runScenario,
  type RunOptions,
  type ScenarioResult,
  type ScenarioSpec,
} from "./footprint-scenario.js";

/**
 * `npm run bench:footprint -- [--minutes N] [--out FILE] …`: what one gateway costs a roadside box
 * over a run (issue 14's figures): cold start to the first safe output, resident memory, and the bytes
 * it makes the disk write per day in steady state (an SD card's wear), with and without MQTT.
 * Scenarios run side by side by default (each its own processes; their start-ups one after the other
 * so that cold starts do not share the CPU); `--sequential` runs them one after the other.
 * See docs/footprint.md for the method and the figures.
 */

const USAGE = `usage: npm run bench:footprint -- [--minutes N] [--out FILE] [--interval-s S] [--warmup-s S]
       [--trace-s S] [--ping-s S] [--scenarios standalone,mqtt,mqtt-events] [--data-root DIR] [--keep] [--sequential]`;

const SCENARIOS = ["standalone", "mqtt", "mqtt-events"] as const;

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

function positive(value: string | undefined, flag: string, fallback: number, allowZero = false): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || (n === 0 && !allowZero))
    fail(`${flag} must be a positive number, got "${value}"`);
  return n;
}

let args;
try {
  args = parseArgs({
    options: {
      minutes: { type: "string" },
      out: { type: "string" },
      "interval-s": { type: "string" },
      "warmup-s": { type: "string" },
      "trace-s": { type: "string" },
      "ping-s": { type: "string" },
      scenarios: { type: "string" },
      "data-root": { type: "string" },
      sequential: { type: "boolean" },
      keep: { type: "boolean" },
      help: { type: "boolean" },
    },
  }).values;
} catch (error) {
  fail((error as Error).message);
}
if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const minutes = positive(args.minutes, "--minutes", 10);
const intervalS = positive(args["interval-s"], "--interval-s", 10);
const warmupS = positive(args["warmup-s"], "--warmup-s", 60, true);
const traceS = positive(args["trace-s"], "--trace-s", 60, true);
const pingS = positive(args["ping-s"], "--ping-s", 10);
const out = resolve(args.out ?? "bench/results/footprint.json");
const names = (args.scenarios ?? SCENARIOS.join(",")).split(",").filter(Boolean);
for (const name of names)
  if (!(SCENARIOS as readonly string[]).includes(name))
    fail(`unknown scenario "${name}"; there are: ${SCENARIOS.join(", ")}`);
if (minutes * 60 < warmupS + 2 * intervalS)
  fail(`--minutes ${minutes} leaves no steady state after the ${warmupS} s warm-up: make it longer`);
if (!hasProcIo())
  fail("this kernel has no /proc/PID/io (CONFIG_TASK_IO_ACCOUNTING): the writes cannot be measured here");

// The store must sit on a filesystem whose writes reach a block device, or write_bytes reads 0.
mkdirSync(args["data-root"] ?? tmpdir(), { recursive: true });
const dataRoot = mkdtempSync(join(resolve(args["data-root"] ?? tmpdir()), "greenwave-footprint-"));
const filesystem = mountOf(dataRoot);
if (MEMORY_FILESYSTEMS.includes(filesystem.fsType))
  fail(
    `${dataRoot} is on ${filesystem.fsType} (${filesystem.mountPoint}), which never writes to a disk: pass --data-root DIR on a disk-backed filesystem`,
  );

const options: RunOptions = {
  durationMs: minutes * 60_000,
  intervalMs: intervalS * 1000,
  warmupMs: warmupS * 1000,
  traceS,
  dataRoot,
};

process.stdout.write(
  `footprint: ${names.join(", ")}, ${minutes} min each, sampled every ${intervalS} s, ${args.sequential ? "one after the other" : "side by side"}; store on ${filesystem.fsType} ${filesystem.source} (${dataRoot})\n`,
);

const startedAt = new Date().toISOString();
// The machine is shared: its load during the run says how far the cold starts can be trusted.
const loadAtStart = loadavg();
const specs: ScenarioSpec[] = names.map((name) => ({
  name,
  broker: name !== "standalone",
  pingEveryMs: name === "mqtt-events" ? pingS * 1000 : null,
}));
let results: ScenarioResult[];
if (args.sequential) {
  results = [];
  for (const spec of specs) results.push(await runScenario(spec, options, () => {}));
} else {
  // Side by side, but each start-up alone: the next scenario starts once the previous one's cold
  // start is measured.
  let gate = Promise.resolve();
  const settled = await Promise.allSettled(
    specs.map((spec) => {
      const previous = gate;
      let release = () => {};
      gate = new Promise<void>((done) => (release = done));
      return previous.then(() => runScenario(spec, options, release));
    }),
  );
  const failed = settled.flatMap((s, i) =>
    s.status === "rejected" ? [`${names[i]}: ${String(s.reason)}`] : [],
  );
  if (failed.length > 0) {
    process.stderr.write(`footprint: ${failed.join("\n")}\n(the stores are kept in ${dataRoot})\n`);
    process.exit(1);
  }
  results = settled.map((s) => (s as PromiseFulfilledResult<ScenarioResult>).value);
}

const mb = (bytes: number | null | undefined) => (bytes == null ? "-" : `${(bytes / 1e6).toFixed(1)} MB`);
const f1 = (n: number) => n.toFixed(n >= 10 ? 1 : 2);
for (const r of results) {
  const s = r.figures.steady;
  process.stdout.write(
    [
      `${r.name}${r.pingEveryMs ? ` (status command every ${r.pingEveryMs / 1000} s)` : ""}`,
      `    cold start to first safe output ${r.coldStart.firstSafeOutputMs} ms (module's first recorded change ${r.coldStart.firstRecordedChangeMs} ms, READY=1 ${r.coldStart.readyMs ?? "-"} ms)`,
      `    RSS at 1 min ${mb(r.figures.rssAt1MinBytes)}, at the end ${mb(r.figures.rssEndBytes)}, max ${mb(r.figures.rssMaxBytes)}`,
      s
        ? `    disk writes (write_bytes) ${f1(s.writeMBPerDay)} MB/day; per ${intervalS} s interval median ${f1(s.intervalMBPerDay.median)} p99 ${f1(s.intervalMBPerDay.p99)} max ${f1(s.intervalMBPerDay.max)} MB/day (n=${s.intervalMBPerDay.intervals}); ${s.events} audit events, ${s.writeBytesPerEvent === null ? "-" : Math.round(s.writeBytesPerEvent)} B each; without events ${s.quietMBPerDay === null ? "-" : f1(s.quietMBPerDay)} MB/day`
        : "    no steady state",
      s
        ? `    log (stdout, journald's input) ${f1(s.logMBPerDay)} MB/day; wchar (files, sockets, pipes) ${f1(s.wcharMBPerDay)} MB/day`
        : "",
      r.mqtt
        ? `    MQTT received: ${Object.entries(r.mqtt.byKind)
            .map(([k, v]) => `${k} ${v.messages}`)
            .join(", ")}; events ${JSON.stringify(r.mqtt.eventTypes)}`
        : "",
      r.trace && "byTarget" in r.trace
        ? `    strace ${r.trace.seconds} s: ${Object.entries(r.trace.byTarget)
            .map(([t, w]) => `${t} ${w.writes} writes ${w.bytes} B ${w.syncs} syncs`)
            .join("; ")}`
        : r.trace
          ? `    strace skipped: ${r.trace.skipped}`
          : "",
    ]
      .filter(Boolean)
      .join("\n") + "\n",
  );
}

const git = (...a: string[]) => {
  try {
    return execFileSync("git", a, { encoding: "utf8" }).trim();
  } catch {
    return null;
  }
};
const machine = {
  node: process.version,
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? "?",
  platform: process.platform,
  commit: git("rev-parse", "HEAD"),
  uncommittedChanges: (git("status", "--porcelain") ?? "").split("\n").filter(Boolean).length,
  loadAverage: { atStart: loadAtStart, atEnd: loadavg() },
};
mkdirSync(dirname(out), { recursive: true });
writeFileSync(
  out,
  `${JSON.stringify({ machine, startedAt, options: { minutes, intervalS, warmupS, traceS, pingS, sequential: args.sequential ?? false, filesystem }, results }, null, 2)}\n`,
);
if (!args.keep) rmSync(dataRoot, { recursive: true, force: true });
process.stdout.write(`written ${out}${args.keep ? ` (the stores are kept in ${dataRoot})` : ""}\n`);
