import { type Document, isNode, LineCounter, parseDocument, visit } from "yaml";
import type { Issue } from "../core/issues.js";
import { ConfigError, type LocatedIssue, UnreadableConfigFileError } from "./errors.js";
import { readRegularFile, UnreadableFileError } from "./read-file.js";

/** Config files are small; anything bigger is a mistake (or an attack) and is refused unread. */
export const MAX_CONFIG_FILE_BYTES = 1_000_000;

/**
 * How far aliases may expand (the yaml library's count of nodes resolved through aliases): a few
 * anchors for repeated stages are fine, an "alias bomb" (aliases of aliases, exponentially) is not.
 */
export const MAX_ALIAS_COUNT = 100;

export interface YamlFile {
  readonly file: string;
  readonly data: unknown;
  /** Attaches file, line and column to issues found in this file's data. */
  locate(issues: readonly Issue[]): LocatedIssue[];
}

/** Reads a config file: a regular file of at most MAX_CONFIG_FILE_BYTES, parsed as YAML. */
export function readYamlFile(file: string): YamlFile {
  let text: string;
  try {
    text = readRegularFile(file, MAX_CONFIG_FILE_BYTES).toString("utf8");
  } catch (error) {
    if (error instanceof UnreadableFileError) throw new UnreadableConfigFileError(file, error.reason);
    throw error;
  }
  return parseYamlText(file, text);
}

export function parseYamlText(file: string, text: string): YamlFile {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return {
          file,
          path: [],
          line: pos.line,
          column: pos.col,
          message: `YAML syntax: ${e.message.split("\n")[0]}`,
        };
      }),
    );
  }
  const data = toData(file, doc, lineCounter);
  return {
    file,
    data,
    locate(issues) {
      return issues.map((issue) => {
        // The deepest node that exists on the issue's path: a missing field points at its parent.
        for (let depth = issue.path.length; depth >= 0; depth--) {
          const node = doc.getIn(issue.path.slice(0, depth), true);
          const range = isNode(node) ? node.range : undefined;
          if (range) {
            const pos = lineCounter.linePos(range[0]);
            return { file, path: issue.path, message: issue.message, line: pos.line, column: pos.col };
          }
        }
        return { file, path: issue.path, message: issue.message };
      });
    },
  };
}

/** The document's data; aliases that expand too far are a located error, not a crash. */
function toData(file: string, doc: Document, lineCounter: LineCounter): unknown {
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    // The yaml library throws a ReferenceError past maxAliasCount, without saying where.
    const alias = firstAlias(doc);
    const pos = alias ? lineCounter.linePos(alias[0]) : { line: 1, col: 1 };
    const message =
      error instanceof ReferenceError
        ? `YAML aliases expand to too many nodes (more than ${MAX_ALIAS_COUNT}; an alias bomb?): write the values out, or use fewer aliases`
        : `YAML: ${(error as Error).message}`;
    throw new ConfigError([{ file, path: [], line: pos.line, column: pos.col, message }]);
  }
}

function firstAlias(doc: Document): readonly [number, number, number] | undefined {
  let range: readonly [number, number, number] | undefined;
  visit(doc, {
    Alias(_, node) {
      range = node.range ?? undefined;
      return visit.BREAK;
    },
  });
  return range;
}
