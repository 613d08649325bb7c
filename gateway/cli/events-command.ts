import { createWriteStream, type WriteStream } from "node:fs";
import type { Command } from "commander";
import { identifier } from "../config/schema.js";
import {
  CSV_HEADER,
  csvLine,
  type ExportFormat,
  type ExportRow,
  jsonRow,
} from "../core/event-log/export-format.js";
import { readExportQuery } from "../core/event-log/export-query.js";
import { MAX_EVENTS_COMMAND_ROWS } from "../protocol/messages.js";
import { type OperatorClient, OperatorError } from "../operator/operator-client.js";
import { nextAfter } from "../store/hires-records.js";
import { StoreReader } from "../store/store-reader.js";
import { addBrokerFlags, type BrokerFlags, connectOperator } from "./broker-options.js";
import { DEFAULT_DATA_DIR, storeFile } from "./data-dir.js";
import { UsageError } from "./usage-error.js";

interface ExportOptions extends BrokerFlags {
  intersection: string;
  corridor?: string;
  dataDir?: string;
  since?: string;
  until?: string;
  format: string;
  output?: string;
  timeoutMs: string;
}

/** One page of rows after a sequence number; `next` null at the end. */
type FetchRows = (afterSeq: number) => Promise<{ rows: ExportRow[]; next: number | null; device: string }>;

/**
 * Rows one export writes at most: 20 million rows are months of a busy intersection, and a bound on
 * a loop that pages over a network. Past it the export stops and says so.
 */
const MAX_EXPORT_ROWS = 20_000_000;

/**
 * `greenwave events export`: the high-resolution event log in the layout ATSPM tools read, from the
 * store at the cabinet (read only, safe while the gateway runs) or, with --broker, from the running
 * gateway page by page. Streams: a week of rows never sits in memory at once.
 */
export function registerEventsCommand(program: Command): void {
  const events = program
    .command("events")
    .description("the high-resolution signal event log (Indiana enumerations)");
  const command = events
    .command("export")
    .description(
      "write a gateway's event log (TimeStamp,DeviceId,EventId,Parameter: the columns ATSPM tools read), oldest first; from its store (read only, safe while it runs) or, with --broker, over MQTT",
    )
    .requiredOption("--intersection <id>", "intersection id")
    .option("--data-dir <dir>", `the gateway's data directory, at the cabinet (default ${DEFAULT_DATA_DIR})`)
    .option(
      "--since <time>",
      "rows at or after an ISO time (2026-11-30T09:00:00Z) or a duration back (30m, 2h, 7d)",
    )
    .option("--until <time>", "rows before an ISO time or a duration back")
    .option("--format <format>", "csv or json", "csv")
    .option("--output <file>", "write to this file instead of standard output")
    .option("--corridor <id>", "with --broker: its corridor (found from its status when omitted)")
    .option("--timeout-ms <ms>", "with --broker: how long to wait for each reply", "5000");
  addBrokerFlags(command, null).action((options: ExportOptions) => runExport(options));
}

async function runExport(options: ExportOptions): Promise<void> {
  if (!identifier.safeParse(options.intersection).success)
    throw new UsageError(
      `--intersection must be an intersection id (1-64 letters, digits, - or _), got "${options.intersection}"`,
    );
  if (options.broker !== undefined && options.dataDir !== undefined)
    throw new UsageError(
      "give --data-dir (read the store at the cabinet) or --broker (ask the running gateway), not both",
    );
  const read = readExportQuery(
    { since: options.since ?? null, until: options.until ?? null, format: options.format },
    Date.now(),
  );
  if (!read.ok) throw new UsageError(`--${read.message}`);
  const { query } = read;
  if (options.broker !== undefined) {
    const client = await connectOperator(options);
    try {
      const corridor = options.corridor ?? (await client.corridorOf(options.intersection));
      const by = options.username ?? process.env.USER ?? "operator";
      await writeExport(
        mqttRows(client, corridor, options.intersection, by, query),
        query.format,
        options.output,
      );
    } finally {
      await client.close();
    }
    return;
  }
  const reader = StoreReader.open(storeFile(options.dataDir ?? DEFAULT_DATA_DIR, options.intersection));
  try {
    const fetch: FetchRows = (afterSeq) => {
      const rows = reader.hiRes({ ...query, afterSeq, limit: query.limit });
      return Promise.resolve({
        rows,
        next: nextAfter(rows, query.limit),
        device: options.intersection,
      });
    };
    await writeExport(fetch, query.format, options.output);
  } finally {
    reader.close();
  }
}

function mqttRows(
  client: OperatorClient,
  corridor: string,
  intersection: string,
  by: string,
  query: { sinceWallMs: number | null; untilWallMs: number | null },
): FetchRows {
  return async (afterSeq) => {
    const reply = await client.command(corridor, intersection, "events", {
      by,
      afterSeq,
      sinceWallMs: query.sinceWallMs,
      untilWallMs: query.untilWallMs,
      limit: MAX_EVENTS_COMMAND_ROWS,
    });
    if (!reply.ok)
      throw new OperatorError(
        `${intersection} refused the events query: ${reply.error?.message ?? "no reason given"}`,
      );
    return readEventsPage(reply.result, intersection);
  };
}

/** A gateway's answer, checked: rows of four whole numbers, in sequence order, after what was asked. */
function readEventsPage(
  result: unknown,
  intersection: string,
): { rows: ExportRow[]; next: number | null; device: string } {
  const bad = (why: string) => new OperatorError(`${intersection} answered the events query with ${why}`);
  if (typeof result !== "object" || result === null) throw bad("no result");
  const { rows, next, device } = result as { rows?: unknown; next?: unknown; device?: unknown };
  if (!Array.isArray(rows) || rows.length > MAX_EVENTS_COMMAND_ROWS) throw bad("no rows, or too many");
  if (next !== null && !Number.isSafeInteger(next)) throw bad(`a next of ${JSON.stringify(next)}`);
  const parsed: ExportRow[] = rows.map((row: unknown) => {
    if (!Array.isArray(row) || row.length !== 4 || !row.every((n) => Number.isSafeInteger(n)))
      throw bad("a malformed row");
    const [seq, atMs, code, param] = row as number[];
    return { seq: seq as number, atMs: atMs as number, code: code as number, param: param as number };
  });
  return {
    rows: parsed,
    next: next as number | null,
    device: typeof device === "string" ? device : intersection,
  };
}

/** The --output file, opened before any row is read: a path it cannot write is a usage error, said once. */
async function openOutput(output: string): Promise<WriteStream> {
  const stream = createWriteStream(output);
  await new Promise<void>((resolve, reject) => {
    stream.once("ready", () => resolve());
    stream.once("error", (error) => reject(new UsageError(`--output ${output}: ${error.message}`)));
  });
  // A later failure (a full disk) reaches write()'s callback; without a listener it would also be thrown.
  stream.on("error", () => {});
  return stream;
}

async function writeExport(
  fetch: FetchRows,
  format: ExportFormat,
  output: string | undefined,
): Promise<void> {
  const out: WriteStream | NodeJS.WriteStream = output ? await openOutput(output) : process.stdout;
  const write = (text: string) =>
    new Promise<void>((resolve, reject) => {
      out.write(text, (error) =>
        error
          ? reject(output ? new OperatorError(`cannot write ${output}: ${error.message}`) : error)
          : resolve(),
      );
    });
  let afterSeq = 0;
  let written = 0;
  if (format === "csv") await write(`${CSV_HEADER}\n`);
  else await write("[");
  for (;;) {
    const page = await fetch(afterSeq);
    for (const row of page.rows) {
      if (row.seq <= afterSeq)
        throw new OperatorError(`the event log's pages do not advance (row ${row.seq} after ${afterSeq})`);
      afterSeq = row.seq;
    }
    const text =
      format === "csv"
        ? page.rows.map((row) => `${csvLine(page.device, row)}\n`).join("")
        : page.rows
            .map(
              (row, i) => `${written + i === 0 ? "\n" : ",\n"}${JSON.stringify(jsonRow(page.device, row))}`,
            )
            .join("");
    if (text) await write(text);
    written += page.rows.length;
    if (page.next === null) break;
    if (written >= MAX_EXPORT_ROWS) {
      process.stderr.write(`greenwave: stopped after ${written} rows; export the rest with --since\n`);
      break;
    }
  }
  if (format === "json") await write(written === 0 ? "]\n" : "\n]\n");
  if (output) await new Promise<void>((resolve) => (out as WriteStream).end(resolve));
  if (written === 0) process.stderr.write("greenwave: no events in that range\n");
}
