import { UsageError } from "./usage-error.js";

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * A duration as a person writes it on a command line: `2s`, `1.5s`, `500ms`, `10m`, `1h30m`. Whole
 * milliseconds; a UsageError (exit 2) naming the flag when it is none of these.
 */
export function parseDuration(text: string, flag: string): number {
  const value = text.trim();
  if (!/^(\d{1,6}(\.\d{1,3})?(ms|s|m|h))+$/.test(value))
    throw new UsageError(`${flag} must be a duration like 90s, 10m, 1h30m or 2.5s, got "${text}"`);
  let ms = 0;
  for (const [, n, , unit] of value.matchAll(/(\d+(\.\d+)?)(ms|s|m|h)/g))
    ms += Number(n) * (UNIT_MS[unit as string] ?? 0);
  return Math.round(ms);
}
