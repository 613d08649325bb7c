import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import { loadCorridor, loadPlan, type LoadedCorridor, type LoadedPlan } from "../config/load.js";
import { shortDigest } from "../core/corridor/plan-identity.js";
import { OperatorError } from "../operator/operator-client.js";
import { cancelChange, type PushResult, pushPlan } from "../operator/plan-push.js";
import { CoordinatorStore } from "../store/coordinator-store.js";
import {
  addBrokerFlags,
  type BrokerFlags,
  brokerSettings,
  connectOperator,
  DEMO_BROKER_URL,
} from "./broker-options.js";
import { activationRequestRefusal } from "../core/corridor/prepare-check.js";
import { UsageError } from "./usage-error.js";
import { planSubjectOf, pushSignature, registerPlanSign } from "./keys-command.js";
import type { WireSignature } from "../core/corridor/plan-signature.js";

interface PushFlags extends CoordinatorFlags {
  corridor: string;
  plan: string;
  at?: string;
  until?: string;
  hold?: boolean;
  signature?: string;
}

const DEFAULT_COORDINATOR_DIR = join(homedir(), ".local", "state", "greenwave");

/** `--corridor` is a corridor file, or a corridor id whose file sits beside the plan's plans directory. */
function corridorFor(flag: string, planFile: string): LoadedCorridor {
  if (existsSync(flag)) return loadCorridor(flag);
  const beside = join(dirname(dirname(resolve(planFile))), "corridor.yaml");
  if (!existsSync(beside))
    throw new UsageError(
      `--corridor ${flag}: not a file, and no corridor.yaml beside the plan's directory: give the corridor file`,
    );
  const corridor = loadCorridor(beside);
  if (corridor.raw.id !== flag)
    throw new UsageError(`--corridor ${flag}: ${beside} is corridor ${corridor.raw.id}`);
  return corridor;
}

export { renderPush };

export function registerPlanPush(plan: Command): void {
  const push = plan
    .command("push")
    .description(
      "switch a corridor to a plan atomically: take every intersection's lease, PREPARE, decide, COMMIT; exit 0 only if committed",
    )
    .requiredOption("--corridor <id|file>", "the corridor (its id, or its corridor file)")
    .requiredOption("--plan <file>", "the plan file")
    .option("--at <instant>", "earliest activation (ISO 8601); rounded up to a common cycle boundary")
    .option(
      "--until <instant>",
      "over a running schedule: the plan wins until this instant (ISO 8601); default: the schedule's next change",
    )
    .option("--hold", "over a running schedule: the plan wins until the next schedule push")
    .option(
      "--signature <file>",
      "the plan's signature (greenwave plan sign); default: PLAN.sig beside the plan if there is one, else unsigned",
    );
  addCoordinatorFlags(push, "activation at least this far ahead").action((flags: PushFlags) =>
    runPush(flags),
  );
  const cancel = plan
    .command("cancel")
    .description(
      "take back a committed plan change that has not taken effect yet, at all of its intersections or at none (the same two-phase commit); exit 0 only if committed",
    )
    .requiredOption("--corridor <id|file>", "the corridor (its file, or its id with config/corridor.yaml)")
    .requiredOption("--txn <id>", "the transaction of the change to cancel (plan push prints it)");
  addCoordinatorFlags(cancel, "unused by a cancel (its instant is its target's)").action(
    (flags: CancelFlags) => runCancel(flags),
  );
  registerPlanSign(plan);
}

interface CancelFlags extends CoordinatorFlags {
  corridor: string;
  txn: string;
}

async function runCancel(flags: CancelFlags): Promise<void> {
  const broker = brokerSettings(flags);
  if (!broker) throw new UsageError("--broker is required");
  if (flags.via) throw new UsageError("--via: a cancel is coordinated by this command only");
  if (!/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/.test(flags.txn))
    throw new UsageError(`--txn must be a transaction id (plan push prints it), got "${flags.txn}"`);
  const corridor = corridorFor(flags.corridor, join("config", "plans", "-"));
  const { ackTimeoutMs } = coordinatorTiming(flags);
  const store = CoordinatorStore.open(resolve(flags.dataDir));
  let result: PushResult;
  try {
    result = await cancelChange({
      ...broker,
      name: flags.as,
      corridor,
      target: flags.txn,
      store,
      ackTimeoutMs,
    });
  } finally {
    store.close();
  }
  if (flags.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(renderPush(result));
  if (result.outcome !== "committed") process.exitCode = 1;
}

/** What `plan push` and `schedule push` share: who coordinates, where, how far ahead, for how long. */
export interface CoordinatorFlags extends BrokerFlags {
  json?: boolean;
  as: string;
  dataDir: string;
  leadS: string;
  ackTimeoutS: string;
  via?: string;
}

export function addCoordinatorFlags(command: Command, leadHelp: string): Command {
  command
    .option("--json", "machine-readable outcome (docs/protocol.md)")
    .option("--as <name>", "coordinator name (your broker user name)", process.env.USER ?? "operator")
    .option("--data-dir <dir>", "where the coordinator keeps its decision log", DEFAULT_COORDINATOR_DIR)
    .option("--lead-s <seconds>", leadHelp, "10")
    .option(
      "--ack-timeout-s <seconds>",
      "how long to resend COMMIT to silent participants before returning",
      "15",
    )
    .option(
      "--via <intersection>",
      "let this intersection's gateway coordinate (its decision log survives this command; --as names you in its audit)",
    );
  return addBrokerFlags(command, DEMO_BROKER_URL);
}

/** The coordinator flags checked: the lead and ack timeout in ms; `--as` a plain name. */
export function coordinatorTiming(flags: CoordinatorFlags): { leadMs: number; ackTimeoutMs: number } {
  const leadMs = Number(flags.leadS) * 1000;
  const ackTimeoutMs = Number(flags.ackTimeoutS) * 1000;
  if (!(leadMs >= 1000)) throw new UsageError(`--lead-s must be at least 1, got "${flags.leadS}"`);
  if (!(ackTimeoutMs >= 0))
    throw new UsageError(`--ack-timeout-s must be a number of seconds, got "${flags.ackTimeoutS}"`);
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(flags.as))
    throw new UsageError(`--as must be a plain name, got "${flags.as}"`);
  return { leadMs, ackTimeoutMs };
}

async function runPush(flags: PushFlags): Promise<void> {
  const broker = brokerSettings(flags);
  if (!broker) throw new UsageError("--broker is required");
  const loadedPlan = loadPlan(flags.plan);
  const corridor = corridorFor(flags.corridor, flags.plan);
  if (loadedPlan.raw.corridor !== corridor.raw.id)
    throw new UsageError(
      `plan ${loadedPlan.raw.id} is for corridor ${loadedPlan.raw.corridor}, not ${corridor.raw.id}`,
    );
  const atWallMs = flags.at === undefined ? null : Date.parse(flags.at);
  if (atWallMs !== null && Number.isNaN(atWallMs))
    throw new UsageError(`--at must be an ISO 8601 instant (2026-11-24T07:00:00Z), got "${flags.at}"`);
  const refusal = activationRequestRefusal(atWallMs, Date.now());
  if (refusal) throw new UsageError(`--at: ${refusal}`);
  const until = overrideEnd(flags, atWallMs);
  const { leadMs, ackTimeoutMs } = coordinatorTiming(flags);
  const signature = pushSignature(flags.plan, flags.signature, () => planSubjectOf(loadedPlan.raw));
  const result = flags.via
    ? await pushVia(flags, flags.via, corridor.raw.id, loadedPlan.raw, {
        atWallMs,
        leadMs,
        ackTimeoutMs,
        until,
        signature,
      })
    : await pushHere(flags, broker, corridor, loadedPlan, {
        atWallMs,
        leadMs,
        ackTimeoutMs,
        until,
        signature,
      });
  if (flags.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(renderPush(result));
  if (result.outcome !== "committed") process.exitCode = 1;
}

/** `--until` / `--hold`: how long the plan wins over a running schedule (undefined: its next change). */
function overrideEnd(flags: PushFlags, atWallMs: number | null): number | "hold" | undefined {
  if (flags.hold && flags.until !== undefined)
    throw new UsageError(
      "--until and --hold exclude each other: give one (or neither: the schedule's next change)",
    );
  if (flags.hold) return "hold";
  if (flags.until === undefined) return undefined;
  const until = Date.parse(flags.until);
  if (Number.isNaN(until))
    throw new UsageError(
      `--until must be an ISO 8601 instant (2026-11-24T09:30:00+01:00), got "${flags.until}"`,
    );
  if (until <= Math.max(Date.now(), atWallMs ?? 0))
    throw new UsageError(`--until ${flags.until} is not after the plan takes effect: give a later instant`);
  return until;
}

interface PushTiming {
  readonly atWallMs: number | null;
  readonly leadMs: number;
  readonly ackTimeoutMs: number;
  readonly until: number | "hold" | undefined;
  /** A schedule bundle rather than a plan file (`schedule push --via`). */
  readonly kind?: "schedule";
  /** The content's signature, sent with the PREPARE (undefined: unsigned). */
  readonly signature?: WireSignature | undefined;
}

/** This command is the coordinator, with its own decision log (`--data-dir`). */
async function pushHere(
  flags: PushFlags,
  broker: NonNullable<ReturnType<typeof brokerSettings>>,
  corridor: LoadedCorridor,
  loadedPlan: LoadedPlan,
  { atWallMs, leadMs, ackTimeoutMs, until, signature }: PushTiming,
): Promise<PushResult> {
  const store = CoordinatorStore.open(resolve(flags.dataDir));
  let result: PushResult;
  try {
    result = await pushPlan({
      ...broker,
      name: flags.as,
      corridor,
      plan: loadedPlan,
      atWallMs,
      leadMs,
      store,
      ackTimeoutMs,
      ...(until !== undefined ? { until } : {}),
      ...(signature ? { signature } : {}),
    });
  } finally {
    store.close();
  }
  return result;
}

/**
 * A gateway of the corridor is the coordinator: the plan file (or a schedule bundle) goes to it as a
 * `plan-push` command.
 */
export async function pushVia(
  flags: BrokerFlags & { readonly as: string },
  via: string,
  corridorId: string,
  planFile: unknown,
  { atWallMs, leadMs, ackTimeoutMs, until, kind, signature }: PushTiming,
): Promise<PushResult> {
  // Leases (5 attempts), votes (5 s) and the ack timeout, with room to spare.
  const replyTimeoutMs = 60_000 + ackTimeoutMs;
  const client = await connectOperator({ ...flags, timeoutMs: "5000" });
  try {
    const reply = await client.command(
      corridorId,
      via,
      "plan-push",
      {
        by: flags.as,
        planFile,
        atWallMs,
        leadMs,
        ackTimeoutMs,
        ...(until !== undefined ? { until } : {}),
        ...(kind ? { kind } : {}),
        ...(signature ? { signature } : {}),
      },
      replyTimeoutMs,
    );
    if (!reply.ok)
      throw new OperatorError(`${via} refused to coordinate: ${reply.error?.message ?? "no reason given"}`);
    return (reply.result as { push: PushResult }).push;
  } finally {
    await client.close();
  }
}

function renderPush(r: PushResult): string {
  if (r.plan.kind === "cancel") return renderCancel(r);
  const lines = [
    `${r.outcome.toUpperCase()}: ${r.plan.kind === "schedule" ? "schedule " : ""}${r.plan.id} v${r.plan.version}${r.plan.digest ? ` (digest ${shortDigest(r.plan.digest)})` : ""} on corridor ${r.corridor} (transaction ${r.txnId}, ${r.durationMs} ms)`,
    r.outcome === "committed"
      ? r.plan.kind === "schedule"
        ? `  governs from ${r.activationAt}: each gateway switches at the first common cycle boundary at or after each change`
        : r.plan.kind === "keyring"
          ? `  every gateway of the corridor trusts its keys from the commit on (the keys it revokes are refused from now)`
          : `  takes effect at ${r.activationAt} (a common cycle boundary)`
      : `  reason: ${r.reason ?? "-"}`,
  ];
  return `${[...lines, ...votesAndAcks(r)].join("\n")}\n`;
}

/** Every participant's vote (with its reason), and who had not acknowledged the commit yet. */
function votesAndAcks(r: PushResult): string[] {
  const lines = r.votes.map(
    (v) => `  ${v.intersection.padEnd(16)} ${v.vote}${v.reason ? `: ${v.reason}` : ""}`,
  );
  if (r.unacknowledged.length > 0)
    lines.push(
      `  not yet acknowledged by ${r.unacknowledged.join(", ")}: they will learn the decision when they ask`,
    );
  return lines;
}

function renderCancel(r: PushResult): string {
  const lines = [
    `${r.outcome.toUpperCase()}: cancel of transaction ${r.plan.cancels ?? "?"} on corridor ${r.corridor} (transaction ${r.txnId}, ${r.durationMs} ms)`,
    r.outcome === "committed"
      ? `  its change, due at ${r.activationAt}, will not take effect anywhere`
      : `  reason: ${r.reason ?? "-"}`,
  ];
  return `${[...lines, ...votesAndAcks(r)].join("\n")}\n`;
}

interface ResolveFlags extends BrokerFlags {
  corridor: string;
  txn: string;
  outcome: string;
  by: string;
  timeoutMs: string;
}

export function registerTxnCommands(program: Command): void {
  const txn = program.command("txn").description("corridor plan transactions");
  const resolveCommand = txn
    .command("resolve")
    .description(
      "end a transaction whose coordinator is gone forever, at every intersection in doubt about it (audited)",
    )
    .requiredOption("--corridor <id>", "corridor id")
    .requiredOption("--txn <id>", "transaction id (greenwave status shows it as in-doubt)")
    .requiredOption(
      "--outcome <committed|aborted>",
      "the outcome: only commit if the coordinator's log says so",
    )
    .requiredOption("--by <operator>", "who resolves it, for the audit trail")
    .option("--timeout-ms <ms>", "how long to wait for each gateway", "5000");
  addBrokerFlags(resolveCommand, DEMO_BROKER_URL).action(async (flags: ResolveFlags) => {
    if (flags.outcome !== "committed" && flags.outcome !== "aborted")
      throw new UsageError(`--outcome must be committed or aborted, got "${flags.outcome}"`);
    const client = await connectOperator(flags);
    try {
      const views = await client.survey(flags.corridor);
      const inDoubt = views.filter(
        (v) => v.status?.lastTxn?.id === flags.txn && v.status.lastTxn.outcome === "in-doubt",
      );
      if (inDoubt.length === 0) {
        const decided = views.find((v) => v.status?.lastTxn?.id === flags.txn)?.status?.lastTxn;
        if (decided) {
          process.stdout.write(
            `no intersection of ${flags.corridor} is in doubt about ${flags.txn}: it ended ${decided.outcome}; nothing to resolve\n`,
          );
          return;
        }
        // A typo must not look like success: the id names nothing any intersection reports.
        throw new OperatorError(
          `no intersection of ${flags.corridor} is in doubt about ${flags.txn}, and none reports it as its last transaction: check the id (greenwave status --wide shows each intersection's last)`,
        );
      }
      for (const view of inDoubt) {
        const reply = await client.command(flags.corridor, view.intersection, "txn-resolve", {
          by: flags.by,
          txnId: flags.txn,
          outcome: flags.outcome,
        });
        process.stdout.write(
          `${view.intersection}: ${reply.ok ? "resolved" : `refused: ${reply.error?.message ?? ""}`}\n`,
        );
        if (!reply.ok) process.exitCode = 1;
      }
    } finally {
      await client.close();
    }
  });
}
