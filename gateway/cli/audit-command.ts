import type { Command } from "commander";
import { identifier } from "../config/schema.js";
import {
  type CollectedAudit,
  collectAudit,
  MAX_AUDIT_LIMIT,
  mqttAuditPages,
} from "../operator/audit-pages.js";
import { StoreReader } from "../store/store-reader.js";
import { DEFAULT_DATA_DIR, storeFile } from "./data-dir.js";
import { addBrokerFlags, type BrokerFlags, connectOperator } from "./broker-options.js";
import { auditLine, parseSince } from "./audit-view.js";
import { UsageError } from "./usage-error.js";

interface AuditOptions extends BrokerFlags {
  intersection: string;
  corridor?: string;
  dataDir?: string;
  since?: string;
  limit: string;
  json?: boolean;
  timeoutMs: string;
}

/**
 * `greenwave audit`: a gateway's audit trail without SQL. At the cabinet it reads the store read only
 * (safe beside the running gateway); with `--broker` it asks the running gateway, page by page, with
 * its read-only `audit` command. Both print the same events.
 */
export function registerAuditCommand(program: Command): void {
  const command = program
    .command("audit")
    .description(
      "print a gateway's audit trail (commands, faults, plans, modes, starts and stops), oldest first: the newest --limit events since --since; from its store (read only, safe while it runs) or, with --broker, over MQTT",
    )
    .requiredOption("--intersection <id>", "intersection id")
    .option("--data-dir <dir>", `the gateway's data directory, at the cabinet (default ${DEFAULT_DATA_DIR})`)
    .option(
      "--since <time>",
      "only events since an ISO time (2026-11-30T09:00:00Z) or for a duration back (30m, 2h, 7d)",
    )
    .option("--limit <n>", `at most this many events, the newest (1 to ${MAX_AUDIT_LIMIT})`, "200")
    .option("--json", "print the events as a JSON array (seq, at, type, actor, detail)")
    .option("--corridor <id>", "with --broker: its corridor (found from its status when omitted)")
    .option("--timeout-ms <ms>", "with --broker: how long to wait for each reply", "5000");
  addBrokerFlags(command, null).action((options: AuditOptions) => runAudit(options));
}

async function runAudit(options: AuditOptions): Promise<void> {
  const intersection = identifier.safeParse(options.intersection);
  if (!intersection.success)
    throw new UsageError(
      `--intersection must be an intersection id (1-64 letters, digits, - or _), got "${options.intersection}"`,
    );
  const limit = Number(options.limit);
  if (!/^\d+$/.test(options.limit) || limit < 1 || limit > MAX_AUDIT_LIMIT)
    throw new UsageError(
      `--limit must be a whole number from 1 to ${MAX_AUDIT_LIMIT}, got "${options.limit}"`,
    );
  const query = {
    sinceWallMs: options.since === undefined ? null : parseSince(options.since, Date.now()),
    limit,
  };
  if (options.broker !== undefined && options.dataDir !== undefined)
    throw new UsageError(
      "give --data-dir (read the store at the cabinet) or --broker (ask the running gateway), not both",
    );
  const collected =
    options.broker !== undefined
      ? await overMqtt(options, query)
      : await fromStore(storeFile(options.dataDir ?? DEFAULT_DATA_DIR, options.intersection), query);
  print(collected, options);
}

async function fromStore(file: string, query: Parameters<typeof collectAudit>[1]): Promise<CollectedAudit> {
  const reader = StoreReader.open(file);
  try {
    return await collectAudit((request) => Promise.resolve(reader.page(request)), query);
  } finally {
    reader.close();
  }
}

async function overMqtt(
  options: AuditOptions,
  query: Parameters<typeof collectAudit>[1],
): Promise<CollectedAudit> {
  const client = await connectOperator(options);
  try {
    const corridor = options.corridor ?? (await client.corridorOf(options.intersection));
    // Not recorded (a query is not audited); it names the asker in the gateway's debug log only.
    const by = options.username ?? process.env.USER ?? "operator";
    return await collectAudit(
      mqttAuditPages(client, { corridor, intersection: options.intersection, by }),
      query,
    );
  } finally {
    await client.close();
  }
}

function print(collected: CollectedAudit, options: AuditOptions): void {
  if (options.json) {
    process.stdout.write(`${JSON.stringify(collected.events, null, 2)}\n`);
  } else {
    process.stdout.write(collected.events.map((event) => `${auditLine(event)}\n`).join(""));
    if (collected.events.length === 0)
      process.stderr.write(
        `greenwave: no events at ${options.intersection}${options.since ? ` since ${options.since}` : ""}\n`,
      );
  }
  if (collected.older)
    process.stderr.write(
      `greenwave: older events not shown: these are the newest ${options.limit} (raise --limit, at most ${MAX_AUDIT_LIMIT}, or give a later --since)\n`,
    );
}
