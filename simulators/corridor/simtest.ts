#!/usr/bin/env node
import { writeFileSync } from "node:fs";
import { Command, CommanderError, InvalidArgumentError } from "commander";
import { isMutation, MUTATIONS, type Mutation } from "./mutations.js";
import { type SimulationResult, simulate } from "./world.js";

/**
 * `npm run simtest -- --seed S` replays one run exactly; `--seeds N` runs a campaign of N seeds.
 * Exits 1 at the first broken invariant, printing its seed, the invariant and the last events.
 */

function integer(name: string) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isSafeInteger(n))
      throw new InvalidArgumentError(`${name} must be a whole number, got "${value}"`);
    return n;
  };
}

function report(result: SimulationResult): void {
  const v = result.violation;
  if (!v) return;
  console.error(`\nseed ${result.seed}: ${v.invariant} broken`);
  console.error(`  ${v.message}`);
  console.error(`last events (simulated seconds):`);
  for (const line of result.trace) console.error(`  ${line}`);
  console.error(`\nreplay: npm run simtest -- --seed ${result.seed}`);
}

const program = new Command()
  .name("simtest")
  .description("Deterministic simulation of a corridor under faults (docs/simulation.md).")
  .option("--seed <n>", "run this one seed (replays exactly)", integer("--seed"))
  .option("--seeds <n>", "run this many seeds, from --from", integer("--seeds"), 100)
  .option("--from <n>", "first seed of a campaign", integer("--from"), 1)
  .option(
    "--minutes <n>",
    "simulated minutes of faults and pushes (then as long again to heal)",
    integer("--minutes"),
    4,
  )
  .option("--corridor <file>", "the corridor to simulate", "config/corridor.yaml")
  .option(
    "--mutation <name>",
    `inject a protocol bug, to see the checker catch it: ${Object.keys(MUTATIONS).join(", ")}`,
    (value: string): Mutation => {
      if (!isMutation(value))
        throw new InvalidArgumentError(
          `unknown mutation "${value}"; one of ${Object.keys(MUTATIONS).join(", ")}`,
        );
      return value;
    },
  )
  .option(
    "--schedules <on|off>",
    "time-of-day schedules in every run (on) or none (off); by default the seed decides",
    (value: string): boolean => {
      if (value !== "on" && value !== "off")
        throw new InvalidArgumentError(`--schedules is on or off, got "${value}"`);
      return value === "on";
    },
  )
  .option("--trace <lines>", "trace lines printed with a failure", integer("--trace"), 60)
  .option("--json <file>", "also write the campaign's figures to this file")
  .exitOverride();

try {
  program.parse();
} catch (error) {
  process.exit(error instanceof CommanderError ? error.exitCode : 2);
}
const flags = program.opts<{
  seed?: number;
  seeds: number;
  from: number;
  minutes: number;
  corridor: string;
  mutation?: Mutation;
  schedules?: boolean;
  trace: number;
  json?: string;
}>();

const seeds =
  flags.seed !== undefined ? [flags.seed] : Array.from({ length: flags.seeds }, (_, i) => flags.from + i);
const started = performance.now();
const totals = {
  runs: 0,
  pushes: 0,
  committed: 0,
  aborted: 0,
  gatewayCrashes: 0,
  brokerRestarts: 0,
  cleanStops: 0,
  longestStopMs: 0,
  floods: 0,
  floodMessages: 0,
  forgeries: 0,
  cancels: 0,
  cancelsCommitted: 0,
  messagesDropped: 0,
  schedulePushes: 0,
  schedulesCommitted: 0,
  scheduleCycleChecks: 0,
  scheduledEntries: 0,
  simulatedMs: 0,
};
let failed: SimulationResult | null = null;
for (const seed of seeds) {
  const result = simulate({
    seed,
    corridorFile: flags.corridor,
    faultMs: flags.minutes * 60_000,
    settleMs: flags.minutes * 60_000,
    mutation: flags.mutation ?? null,
    ...(flags.schedules === undefined ? {} : { schedules: flags.schedules }),
    traceLines: flags.trace,
  });
  totals.runs++;
  totals.pushes += result.stats.pushes;
  totals.committed += result.stats.committed;
  totals.aborted += result.stats.aborted;
  totals.gatewayCrashes += result.stats.gatewayCrashes;
  totals.brokerRestarts += result.stats.brokerRestarts;
  totals.cleanStops += result.stats.cleanStops;
  totals.longestStopMs = Math.max(totals.longestStopMs, result.stats.longestStopMs);
  totals.floods += result.stats.floods;
  totals.floodMessages += result.stats.floodMessages;
  totals.forgeries += result.stats.forgeries;
  totals.cancels += result.stats.cancels;
  totals.cancelsCommitted += result.stats.cancelsCommitted;
  totals.messagesDropped += result.stats.messagesDropped;
  totals.schedulePushes += result.stats.schedulePushes;
  totals.schedulesCommitted += result.stats.schedulesCommitted;
  totals.scheduleCycleChecks += result.stats.scheduleCycleChecks;
  totals.scheduledEntries += result.stats.scheduledEntries;
  totals.simulatedMs += result.simulatedMs;
  if (seeds.length === 1)
    console.log(`seed ${seed}: ${JSON.stringify(result.stats)} trace ${result.traceDigest}`);
  if (result.violation) {
    failed = result;
    break;
  }
  if (totals.runs % 100 === 0) console.log(`${totals.runs} seeds ok…`);
}
const wallMs = performance.now() - started;
const summary = {
  ...totals,
  mutation: flags.mutation ?? null,
  failedSeed: failed?.seed ?? null,
  wallMs: Math.round(wallMs),
  simulatedHoursPerWallSecond: Number((totals.simulatedMs / 3_600_000 / (wallMs / 1000)).toFixed(2)),
};
console.log(
  `${totals.runs} seed(s), ${totals.pushes} pushes (${totals.committed} committed, ${totals.aborted} aborted), ` +
    `${totals.gatewayCrashes} gateway crashes, ${totals.brokerRestarts} broker restarts, ` +
    `${totals.cleanStops} clean stops (longest ${(totals.longestStopMs / 1000).toFixed(1)} s), ` +
    `${totals.floods} floods (${totals.floodMessages} messages, ${totals.messagesDropped} dropped by the rate limit), ` +
    `${totals.forgeries} forgeries by a Byzantine member, ${totals.cancels} cancels (${totals.cancelsCommitted} committed), ` +
    `${totals.schedulePushes} schedule pushes (${totals.schedulesCommitted} committed; ${totals.scheduleCycleChecks} in-step cycles and ` +
    `${totals.scheduledEntries} scheduled entries checked); ` +
    `${(totals.simulatedMs / 3_600_000).toFixed(1)} simulated hours in ${(wallMs / 1000).toFixed(1)} s`,
);
if (flags.json) writeFileSync(flags.json, `${JSON.stringify(summary, null, 2)}\n`);
if (failed) {
  report(failed);
  process.exitCode = 1;
}
