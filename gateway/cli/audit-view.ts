import type { AuditEvent } from "../core/audit-page.js";
import { UsageError } from "./usage-error.js";

/** How `greenwave audit` reads its input and shows events: pure, for the command and its tests. */

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * `--since`: an ISO 8601 time (`2026-11-30T09:00:00Z`; without a zone it is local time, as Date reads
 * it) or a duration back from now (`30m`, `2h`, `1h30m`, `7d`). Returns wall-clock ms.
 */
export function parseSince(text: string, nowWallMs: number): number {
  const value = text.trim();
  if (/^(\d{1,6}[smhd])+$/.test(value)) {
    let ms = 0;
    for (const [, n, unit] of value.matchAll(/(\d+)([smhd])/g))
      ms += Number(n) * (UNIT_MS[unit as string] ?? 0);
    return nowWallMs - ms;
  }
  const at = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?)?(Z|[+-]\d{2}:?\d{2})?$/.test(value)
    ? Date.parse(value)
    : Number.NaN;
  if (Number.isNaN(at))
    throw new UsageError(
      `--since must be an ISO time (e.g. 2026-11-30T09:00:00Z) or a duration back from now (e.g. 30m, 2h, 1h30m, 7d), got "${text}"`,
    );
  return at;
}

/** One line per event: `2026-11-30T09:12:03.120Z  #42  command  alice  flash on=true ok`. */
export function auditLine(event: AuditEvent): string {
  const detail = describeDetail(event.type, event.detail);
  return `${event.at}  #${event.seq}  ${event.type}  ${event.actor ?? "-"}${detail ? `  ${detail}` : ""}`;
}

function describeDetail(type: string, detail: Record<string, unknown>): string {
  if (type !== "command") return fields(detail);
  // The command's name first, then what it asked, then how it was answered; its correlation id is in --json.
  const { command, id: _id, ok, refused, ...asked } = detail;
  // The refusal is the line's last part: its own words, unquoted.
  const why = typeof refused === "string" ? refused : format(refused);
  const outcome = ok === true ? "ok" : `refused${refused === undefined ? "" : `: ${why}`}`;
  return [format(command), fields(asked), outcome].filter((part) => part !== "").join(" ");
}

function fields(detail: Record<string, unknown>): string {
  return Object.entries(detail)
    .map(([key, value]) => `${key}=${format(value)}`)
    .join(" ");
}

function format(value: unknown): string {
  if (value === null || value === undefined) return "none";
  if (typeof value === "string") return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return value.map(format).join(",");
  const record = value as Record<string, unknown>;
  // A plan as one token, so that every field stays key=value: "off-peak@v1".
  if (typeof record.id === "string" && typeof record.version === "number" && Object.keys(record).length === 2)
    return `${record.id}@v${record.version}`;
  return JSON.stringify(value);
}
