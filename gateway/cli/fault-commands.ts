import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import type { FaultLatch } from "../core/monitor.js";
import type { DatabaseReading, LatchInspection } from "../store/durable-latch.js";
import { LATCH_RECORD_FILE, type RecordReading } from "../store/latch-record.js";
import { StoreError } from "../store/errors.js";
import { GatewayStore, inspectStoredLatch, STORE_FILE } from "../store/store.js";
import { addBrokerFlags, type BrokerFlags, connectOperator, DEMO_BROKER_URL } from "./broker-options.js";
import { runningGateway } from "../store/run-marker.js";
import { UsageError } from "./usage-error.js";

interface OfflineOptions {
  intersection: string;
  dataDir: string;
  by: string;
}

interface ShowOptions {
  intersection: string;
  dataDir: string;
  json?: boolean;
}

interface ResetOptions extends BrokerFlags {
  intersection: string;
  corridor?: string;
  by: string;
  reason?: string;
  timeoutMs: string;
}

/**
 * `greenwave fault reset`: the operator's reset of a running gateway, over MQTT (the broker's ACL lets
 * only operators send commands). `fault show` / `fault clear`: at the cabinet, on the gateway's store,
 * for a gateway that is stopped. All of them are audited in the gateway's store.
 */
export function registerFaultCommands(program: Command): void {
  const fault = program.command("fault").description("latched faults");
  const reset = fault
    .command("reset")
    .description("clear the latched fault of a running gateway over MQTT (operators only); audited")
    .requiredOption("--intersection <id>", "intersection id")
    .option("--corridor <id>", "its corridor (found from its status when omitted)")
    .requiredOption("--by <operator>", "who resets it, for the audit trail")
    .option("--reason <text>", "why, for the audit trail")
    .option("--timeout-ms <ms>", "how long to wait for the gateway's reply", "5000");
  addBrokerFlags(reset, DEMO_BROKER_URL).action((options: ResetOptions) => runReset(options));
  fault
    .command("show")
    .description(
      "print the latched fault stored by a gateway (read only), and what each copy (latch.rec, gateway.db) says; exit 1 when a fault is latched",
    )
    .requiredOption("--intersection <id>", "intersection id")
    .option("--data-dir <dir>", "the gateway's data directory", "/var/lib/greenwave")
    .option("--json", "print it as JSON")
    .action((options: ShowOptions) => showFault(options));
  fault
    .command("clear")
    .description(
      "clear the latched fault of a STOPPED gateway in both its copies (it restarts through flash and all-red)",
    )
    .requiredOption("--intersection <id>", "intersection id")
    .requiredOption("--by <operator>", "who clears it, for the audit trail")
    .option("--data-dir <dir>", "the gateway's data directory", "/var/lib/greenwave")
    .action((options: OfflineOptions) => clearFault(options));
}

/**
 * Reads both copies without writing anything, and applies the rules a starting gateway applies
 * (DurableLatch): what it prints as latched is what the gateway would start with.
 */
function showFault(options: ShowOptions): void {
  const inspection = inspectStoredLatch(storeDirectory(options));
  if (inspection.latch) process.exitCode = 1;
  if (options.json) {
    process.stdout.write(
      `${JSON.stringify({ intersection: options.intersection, ...inspection }, null, 2)}\n`,
    );
    return;
  }
  process.stdout.write(describeInspection(options.intersection, inspection));
}

export function describeInspection(intersection: string, inspection: LatchInspection): string {
  const lines = [
    inspection.latch
      ? `latched fault at ${intersection}: ${describeLatch(inspection.latch)}`
      : `no latched fault at ${intersection}`,
    `  ${LATCH_RECORD_FILE} ${inspection.files.record}: ${describeRecord(inspection.record)}`,
    `  ${STORE_FILE} ${inspection.files.database}: ${describeDatabase(inspection.database)}`,
    ...inspection.findings.map((finding) => `  note: ${finding}`),
  ];
  return `${lines.join("\n")}\n`;
}

function describeLatch(latch: FaultLatch): string {
  const groups = latch.groups.length > 0 ? `groups ${latch.groups.join(", ")}; ` : "";
  return `${latch.kind}: ${latch.message} (${groups}since ${new Date(latch.atWallMs).toISOString()})`;
}

function describeRecord(record: RecordReading): string {
  if (record.status === "missing") return "missing";
  if (record.status === "unreadable") return `unreadable: ${record.problem}`;
  const other = record.slot === "A" ? "B" : "A";
  const slots = `slot ${record.slot}, seq ${record.seq}; slot ${other}: ${"seq" in record.otherSlot ? `seq ${record.otherSlot.seq}` : record.otherSlot.problem}`;
  const { latch, cleared } = record.state;
  if (latch) return `latched ${latch.kind} (${slots})`;
  if (cleared)
    return `clear, cleared by ${cleared.by} at ${new Date(cleared.atWallMs).toISOString()} (${slots})`;
  return `clear (${slots})`;
}

function describeDatabase(database: DatabaseReading): string {
  switch (database.status) {
    case "missing":
      return "missing";
    case "empty":
      return `empty (${database.detail})`;
    case "unreadable":
      return `unreadable: ${database.problem}`;
    case "ok":
      return database.latch ? `latched ${database.latch.kind}` : "clear";
  }
}

function clearFault(options: OfflineOptions): void {
  const store = openExisting(options);
  try {
    for (const finding of store.latchFindings) process.stderr.write(`greenwave: note: ${finding}\n`);
    const latch = store.load();
    if (!latch) {
      process.stdout.write(`no latched fault at ${options.intersection}\n`);
      return;
    }
    store.appendEvent(
      {
        atWallMs: Date.now(),
        type: "fault-reset",
        actor: options.by,
        detail: { offline: true, kind: latch.kind, message: latch.message },
      },
      null,
    );
    // Throws (exit 1, naming the file) unless both copies are cleared.
    store.clear(options.by);
    process.stdout.write(
      `cleared ${latch.kind} at ${options.intersection} (${latch.message}) in ${store.latchRecordFile} and ${store.file}; audited in ${store.file}\n`,
    );
  } finally {
    store.close();
  }
}

function storeDirectory(options: { intersection: string; dataDir: string }): string {
  const dir = resolve(options.dataDir, options.intersection);
  // Either copy is enough: a gateway whose database is gone still has its latch record.
  if (!existsSync(join(dir, STORE_FILE)) && !existsSync(join(dir, LATCH_RECORD_FILE)))
    throw new UsageError(
      `no gateway store for ${options.intersection} in ${dir} (neither ${STORE_FILE} nor ${LATCH_RECORD_FILE}; check --data-dir)`,
    );
  return dir;
}

function openExisting(options: { intersection: string; dataDir: string }): GatewayStore {
  const dir = storeDirectory(options);
  // The running gateway holds the latch in memory too: cleared under it, the store would say "no fault"
  // while the intersection flashes, and the gateway would write the latch back at its next change.
  const running = runningGateway(dir);
  if (running !== null)
    throw new StoreError(
      `the gateway of ${options.intersection} is running (pid ${running}) on ${dir}: clear its fault over MQTT with greenwave fault reset --intersection ${options.intersection} --by NAME, or stop it first (systemctl stop greenwave)`,
    );
  return GatewayStore.open(dir);
}

async function runReset(options: ResetOptions): Promise<void> {
  const client = await connectOperator(options);
  try {
    const corridor = options.corridor ?? (await client.corridorOf(options.intersection));
    const reply = await client.command(corridor, options.intersection, "fault-reset", {
      by: options.by,
      ...(options.reason ? { reason: options.reason } : {}),
    });
    if (!reply.ok) {
      process.stderr.write(
        `greenwave: ${options.intersection} refused the reset: ${reply.error?.message ?? "no reason given"}\n`,
      );
      process.exitCode = 1;
      return;
    }
    const result = reply.result as { message?: string } | undefined;
    process.stdout.write(`${options.intersection}: ${result?.message ?? "done"}\n`);
  } finally {
    await client.close();
  }
}
