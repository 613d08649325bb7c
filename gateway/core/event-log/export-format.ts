import { codeName } from "./indiana.js";

/**
 * The event log's export layout, the one ATSPM tools read: one row per event, with the columns
 * TimeStamp (UTC, ISO 8601, to the millisecond; rows fall on 0.1 s), DeviceId (the intersection's
 * location id), EventId (the Indiana code) and Parameter. docs/event-log.md maps the columns to UDOT
 * ATSPM's Controller_Event_Log (Timestamp, SignalID, EventCode, EventParam).
 */
export const CSV_HEADER = "TimeStamp,DeviceId,EventId,Parameter";

export interface ExportRow {
  readonly seq: number;
  readonly atMs: number;
  readonly code: number;
  readonly param: number;
}

export type ExportFormat = "csv" | "json";

export function csvLine(device: string, row: ExportRow): string {
  return `${new Date(row.atMs).toISOString()},${device},${row.code},${row.param}`;
}

export function jsonRow(device: string, row: ExportRow) {
  return {
    seq: row.seq,
    timestamp: new Date(row.atMs).toISOString(),
    device,
    code: row.code,
    param: row.param,
    name: codeName(row.code),
  };
}

/** A whole export as text: CSV with its header line, or a JSON array (one row per line). */
export function exportText(format: ExportFormat, device: string, rows: readonly ExportRow[]): string {
  if (format === "csv") return [CSV_HEADER, ...rows.map((row) => csvLine(device, row))].join("\n") + "\n";
  if (rows.length === 0) return "[]\n";
  return `[\n${rows.map((row) => JSON.stringify(jsonRow(device, row))).join(",\n")}\n]\n`;
}
