import { isAbsolute, relative } from "node:path";
import { formatPath } from "../core/issues.js";

/** One problem in one file, located as precisely as we can (line and column when the file parsed). */
export interface LocatedIssue {
  readonly file: string;
  readonly path: readonly (string | number)[];
  readonly message: string;
  readonly line?: number;
  readonly column?: number;
}

/**
 * Bad configuration or plan input. Carries every issue found, each naming the file, the field and what
 * is wrong; the CLI prints them without a stack trace.
 */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(readonly issues: readonly LocatedIssue[]) {
    super(issues.map(formatIssue).join("\n"));
  }
}

/**
 * A file that cannot be used at all: missing, not a regular file, too large. Kept apart so that the
 * file that named it can say which of its fields did.
 */
export class UnreadableConfigFileError extends ConfigError {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super([{ file, path: [], message: `cannot read: ${reason}` }]);
  }
}

export function formatIssue(issue: LocatedIssue): string {
  const file = displayPath(issue.file);
  const where = issue.line ? `${file}:${issue.line}:${issue.column ?? 1}` : file;
  const field = formatPath(issue.path);
  return field ? `${where}: ${field}: ${issue.message}` : `${where}: ${issue.message}`;
}

/** Paths below the working directory are shown relative to it, as the user typed them. */
export function displayPath(file: string): string {
  if (!isAbsolute(file)) return file;
  const rel = relative(process.cwd(), file);
  return rel.startsWith("..") || isAbsolute(rel) ? file : rel;
}
