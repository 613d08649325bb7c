import { readInstant } from "../time/instant-text.js";
import type { ExportFormat } from "./export-format.js";

/** The most rows one page of an export holds (HTTP, MQTT and the store read alike); a reader pages on by `after`. */
export const MAX_EXPORT_PAGE = 5000;

export interface ExportQuery {
  readonly sinceWallMs: number | null;
  readonly untilWallMs: number | null;
  /** Rows after this sequence number: where the last page ended. */
  readonly afterSeq: number;
  readonly limit: number;
  readonly format: ExportFormat;
}

export type ExportQueryRead =
  { readonly ok: true; readonly query: ExportQuery } | { readonly ok: false; readonly message: string };

/** The parameters as text (a URL's query, a command's fields): every one optional, every one checked. */
export interface ExportParameters {
  readonly since?: string | null;
  readonly until?: string | null;
  readonly after?: string | null;
  readonly limit?: string | null;
  readonly format?: string | null;
}

export function readExportQuery(p: ExportParameters, nowWallMs: number): ExportQueryRead {
  const instant = (name: string, text: string | null | undefined) => {
    if (text === null || text === undefined || text === "") return { value: null };
    const at = readInstant(text, nowWallMs);
    return at === null
      ? {
          error: `${name} must be an ISO time (2026-11-30T09:00:00Z), epoch milliseconds or a duration back (30m, 2h, 7d), got "${text.slice(0, 60)}"`,
        }
      : { value: at };
  };
  const since = instant("since", p.since);
  if ("error" in since) return { ok: false, message: since.error as string };
  const until = instant("until", p.until);
  if ("error" in until) return { ok: false, message: until.error as string };
  const whole = (
    name: string,
    text: string | null | undefined,
    fallback: number,
    min: number,
    max: number,
  ) => {
    if (text === null || text === undefined || text === "") return fallback;
    return /^\d{1,16}$/.test(text) && Number(text) >= min && Number(text) <= max ? Number(text) : null;
  };
  const afterSeq = whole("after", p.after, 0, 0, Number.MAX_SAFE_INTEGER);
  if (afterSeq === null)
    return {
      ok: false,
      message: `after must be a sequence number (0 or more), got "${String(p.after).slice(0, 30)}"`,
    };
  const limit = whole("limit", p.limit, MAX_EXPORT_PAGE, 1, MAX_EXPORT_PAGE);
  if (limit === null)
    return {
      ok: false,
      message: `limit must be a whole number from 1 to ${MAX_EXPORT_PAGE}, got "${String(p.limit).slice(0, 30)}"`,
    };
  const format = p.format ?? "csv";
  if (format !== "csv" && format !== "json")
    return { ok: false, message: `format must be csv or json, got "${format.slice(0, 30)}"` };
  if (since.value !== null && until.value !== null && until.value <= since.value)
    return {
      ok: false,
      message: `until (${new Date(until.value).toISOString()}) must be after since (${new Date(since.value).toISOString()})`,
    };
  return {
    ok: true,
    query: { sinceWallMs: since.value, untilWallMs: until.value, afterSeq, limit, format },
  };
}
