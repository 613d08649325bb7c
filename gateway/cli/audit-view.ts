import type { AuditEvent } from "../core/audit-page.js";
import { readInstant } from "../core/time/instant-text.js";
import { UsageError } from "./usage-error.js";

/** How `greenwave audit` reads its input and shows events: pure, for the command and its tests. */

/**
 * `--since`: an ISO 8601 time (`2026-11-30T09:00:00Z`; without a zone it is local time, as Date reads
 * it) or a duration back from now (`30m`, `2h`, `1h30m`, `7d`). Returns wall-clock ms.
 */
export function parseSince(text: string, nowWallMs: number, flag = "--since"): number {
  const at = readInstant(text, nowWallMs);
  if (at === null)
    throw new UsageError(
      `${flag} must be an ISO time (e.g. 2026-11-30T09:00:00Z) or a duration back from now (e.g. 30m, 2h, 1h30m, 7d), got "${text}"`,
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
