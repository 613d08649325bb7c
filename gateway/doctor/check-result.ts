/**
 * One finding of `greenwave doctor`: what was checked, how it went, what was found and, for a warning
 * or a failure, what to do. Printed as one line, or as one JSON object with `--json`.
 */

export type CheckStatus = "PASS" | "WARN" | "FAIL";

export interface CheckResult {
  /** "config", "module io1", "broker", "clock", "disk", "store elm", "service". */
  readonly check: string;
  readonly status: CheckStatus;
  /** What was found, with where (file, address, unit). */
  readonly detail: string;
  /** What to do about a WARN or FAIL; null when there is nothing to do. */
  readonly action: string | null;
}

export const pass = (check: string, detail: string): CheckResult => ({
  check,
  status: "PASS",
  detail,
  action: null,
});

export const warn = (check: string, detail: string, action: string | null): CheckResult => ({
  check,
  status: "WARN",
  detail,
  action,
});

export const fail = (check: string, detail: string, action: string | null): CheckResult => ({
  check,
  status: "FAIL",
  detail,
  action,
});

/** `PASS  config     <detail>`, the check names padded to one column; a WARN or FAIL ends with what to do. */
export function renderLines(results: readonly CheckResult[]): string {
  const width = Math.max(0, ...results.map((r) => r.check.length));
  return results
    .map((r) => `${r.status}  ${r.check.padEnd(width)}  ${r.detail}${r.action ? `: ${r.action}` : ""}\n`)
    .join("");
}

/** Exit code of the command: 1 when any check failed, else 0 (warnings do not fail it). */
export function exitCodeOf(results: readonly CheckResult[]): number {
  return results.some((r) => r.status === "FAIL") ? 1 : 0;
}
