import { readFileSync } from "node:fs";
import { isNode, LineCounter, parseDocument } from "yaml";
import type { Issue } from "../core/issues.js";
import { ConfigError, type LocatedIssue } from "./errors.js";

/** Config files are small; anything bigger is a mistake (or an attack) and is refused unread. */
export const MAX_CONFIG_FILE_BYTES = 1_000_000;

export interface YamlFile {
  readonly file: string;
  readonly data: unknown;
  /** Attaches file, line and column to issues found in this file's data. */
  locate(issues: readonly Issue[]): LocatedIssue[];
}

export function readYamlFile(file: string): YamlFile {
  let text: string;
  try {
    const buffer = readFileSync(file);
    if (buffer.byteLength > MAX_CONFIG_FILE_BYTES) {
      throw new ConfigError([
        {
          file,
          path: [],
          message: `file is ${buffer.byteLength} bytes; config files are limited to ${MAX_CONFIG_FILE_BYTES}`,
        },
      ]);
    }
    text = buffer.toString("utf8");
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory, not a file" : String(error);
    throw new ConfigError([{ file, path: [], message: `cannot read: ${why}` }]);
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
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
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
