const UNIT_MS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** The furthest instant from 1970 a Date holds (ECMA-262 §21.4.1.1): beyond it, no time to print or compare. */
const MAX_DATE_MS = 8.64e15;

/**
 * An instant as a person writes it on a command line or in a URL: an ISO 8601 time
 * (`2026-11-30T09:00:00Z`; without a zone it is local time, as Date reads it), a duration back from
 * now (`30m`, `2h`, `1h30m`, `7d`) or epoch milliseconds (13 digits). Wall-clock ms, or null when it
 * is none of these, or lies beyond what a Date holds (±8.64e15 ms: `999999d` a hundred times).
 */
export function readInstant(text: string, nowWallMs: number): number | null {
  const value = text.trim();
  if (/^(\d{1,6}[smhd])+$/.test(value)) {
    let ms = 0;
    for (const [, n, unit] of value.matchAll(/(\d+)([smhd])/g))
      ms += Number(n) * (UNIT_MS[unit as string] ?? 0);
    const at = nowWallMs - ms;
    return Math.abs(at) <= MAX_DATE_MS ? at : null;
  }
  if (/^\d{12,14}$/.test(value)) return Number(value);
  const at = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?)?(Z|[+-]\d{2}:?\d{2})?$/.test(value)
    ? Date.parse(value)
    : Number.NaN;
  return Number.isNaN(at) ? null : at;
}
