import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { benchActuation } from "./actuation.js";
import { benchEventLog } from "./event-log.js";
import { benchGreenWave } from "./green-wave.js";
import { benchLampStates } from "./lamp-states.js";
import { benchModbusLatency } from "./modbus-latency.js";
import { benchMqttRoundTrip } from "./mqtt-roundtrip.js";
import { benchPlanPush } from "./plan-push.js";
import { benchProgression } from "./progression.js";
import { benchSchedule } from "./schedule.js";
import { benchSignedPush } from "./signed-push.js";
import type { BenchResult } from "./stats.js";

/**
 * `npm run bench`: runs every benchmark (or `--only NAME`), prints a table, and writes the figures
 * to bench/results/latest.json. Compare ratios measured in one run: these machines are shared.
 */
const BENCHES: Record<string, () => BenchResult | BenchResult[] | Promise<BenchResult | BenchResult[]>> = {
  actuation: benchActuation,
  "event-log": benchEventLog,
  "green-wave": benchGreenWave,
  "lamp-states": benchLampStates,
  "modbus-latency": benchModbusLatency,
  "mqtt-roundtrip": benchMqttRoundTrip,
  "plan-push": benchPlanPush,
  progression: benchProgression,
  schedule: benchSchedule,
  "signed-push": benchSignedPush,
};

/** Minutes of SUMO each: run only when named (`--only green-wave`). */
const ON_REQUEST = new Set(["actuation", "green-wave"]);

const only = process.argv.includes("--only") ? process.argv[process.argv.indexOf("--only") + 1] : undefined;
if (only !== undefined && !(only in BENCHES)) {
  process.stderr.write(`unknown benchmark "${only}"; there are: ${Object.keys(BENCHES).join(", ")}\n`);
  process.exit(2);
}

const startedAt = new Date().toISOString();
const results: BenchResult[] = [];
for (const [name, bench] of Object.entries(BENCHES)) {
  if (only ? name !== only : ON_REQUEST.has(name)) continue;
  process.stdout.write(`running ${name}…\n`);
  results.push(...[await bench()].flat());
}

const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 1 ? n.toFixed(2) : n.toFixed(3));
for (const r of results) {
  const extra = Object.entries(r.extra ?? {})
    .map(([k, v]) => `${k}=${typeof v === "number" ? fmt(v) : v}`)
    .join(" ");
  process.stdout.write(
    `${r.name}\n    median ${fmt(r.median)} ${r.unit}  p99 ${fmt(r.p99)} ${r.unit}  max ${fmt(r.max)} ${r.unit}  n=${r.samples}  ${extra}\n`,
  );
}
mkdirSync("bench/results", { recursive: true });
const machine = {
  node: process.version,
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? "?",
  platform: process.platform,
};
writeFileSync("bench/results/latest.json", `${JSON.stringify({ machine, startedAt, results }, null, 2)}\n`);
process.stdout.write("written bench/results/latest.json\n");
