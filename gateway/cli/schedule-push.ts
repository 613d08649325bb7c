import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { loadCorridor } from "../config/load.js";
import { findScheduleCorridor, loadSchedule } from "../config/load-schedule.js";
import { type PushResult, pushSchedule } from "../operator/plan-push.js";
import { scheduleBundle } from "../config/schedule-bundle.js";
import { CoordinatorStore } from "../store/coordinator-store.js";
import { brokerSettings } from "./broker-options.js";
import {
  addCoordinatorFlags,
  type CoordinatorFlags,
  coordinatorTiming,
  pushVia,
  renderPush,
} from "./txn-commands.js";
import { UsageError } from "./usage-error.js";
import { pushSignature, registerScheduleSign, scheduleSubjectOf } from "./keys-command.js";

interface SchedulePushFlags extends CoordinatorFlags {
  corridor?: string;
  schedule: string;
  signature?: string;
}

/**
 * `greenwave schedule push`: the schedule, with every plan it names, committed to every intersection of
 * the corridor through the lease and two-phase commit (all take this version or none does); each
 * gateway then runs it by its own clock. Checked whole before any lease is taken.
 */
export function registerSchedulePush(schedule: Command): void {
  const push = schedule
    .command("push")
    .description(
      "commit a time-of-day schedule (and its plans) to every intersection of the corridor atomically; exit 0 only if committed",
    )
    .requiredOption("--schedule <file>", "the schedule file")
    .option("--corridor <file>", "the corridor file (default: found from the schedule, as for a plan)")
    .option(
      "--signature <file>",
      "the schedule's signature (greenwave schedule sign); default: SCHEDULE.sig beside it if there is one, else unsigned",
    );
  addCoordinatorFlags(push, "the schedule governs from at least this far ahead").action(
    (flags: SchedulePushFlags) => runSchedulePush(flags),
  );
  registerScheduleSign(schedule);
}

async function runSchedulePush(flags: SchedulePushFlags): Promise<void> {
  const broker = brokerSettings(flags);
  if (!broker) throw new UsageError("--broker is required");
  if (flags.corridor !== undefined && !existsSync(flags.corridor))
    throw new UsageError(`--corridor ${flags.corridor}: no such file: give the corridor file`);
  const corridor = loadCorridor(flags.corridor ?? findScheduleCorridor(flags.schedule));
  // Every problem of the schedule and its plans, for every intersection, before any lease is taken.
  const schedule = loadSchedule(flags.schedule, corridor);
  const { leadMs, ackTimeoutMs } = coordinatorTiming(flags);
  const signature = pushSignature(flags.schedule, flags.signature, () =>
    scheduleSubjectOf(schedule, corridor),
  );
  if (flags.via) {
    const bundle = scheduleBundle(schedule, corridor);
    const result = await pushVia(flags, flags.via, corridor.raw.id, bundle, {
      atWallMs: null,
      leadMs,
      ackTimeoutMs,
      until: undefined,
      kind: "schedule",
      signature,
    });
    return report(result, flags);
  }
  const store = CoordinatorStore.open(resolve(flags.dataDir));
  try {
    const result = await pushSchedule({
      ...broker,
      name: flags.as,
      corridor,
      schedule,
      atWallMs: null,
      leadMs,
      store,
      ackTimeoutMs,
      ...(signature ? { signature } : {}),
    });
    report(result, flags);
  } finally {
    store.close();
  }
}

function report(result: PushResult, flags: SchedulePushFlags): void {
  if (flags.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(renderPush(result));
  if (result.outcome !== "committed") process.exitCode = 1;
}
