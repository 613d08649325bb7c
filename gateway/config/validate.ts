import type { z } from "zod";
import type { Issue } from "../core/issues.js";
import { ConfigError } from "./errors.js";
import type { YamlFile } from "./yaml-file.js";

/**
 * Checks a file's data against its schema: returns the data zod made of it, or throws a ConfigError
 * with every issue located in the file. The same for a YAML file and for a plan received as JSON.
 */
export function validate<S extends z.ZodType>(schema: S, yaml: YamlFile): z.output<S> {
  const forbidden = forbiddenKeyIssues(yaml.data);
  if (forbidden.length > 0) throw new ConfigError(yaml.locate(forbidden));
  const result = schema.safeParse(yaml.data);
  if (result.success) return result.data;
  throw new ConfigError(yaml.locate(schemaIssues(result.error)));
}

/** zod's issues with their field paths; a refused record key says why, not just "Invalid key". */
export function schemaIssues(error: z.ZodError): Issue[] {
  return error.issues.map((issue) => ({
    path: issue.path.filter((p): p is string | number => typeof p !== "symbol"),
    message:
      issue.code === "invalid_key"
        ? `not allowed as a key: ${issue.issues.map((inner) => inner.message).join("; ")}`
        : issue.message,
  }));
}

/**
 * `__proto__` as a key anywhere in the data. zod drops such a key from a record without a word (so
 * that it cannot replace the record's prototype), which would silently lose, say, a plan's part;
 * refusing it says so instead. Walked without recursion, and each node links to its parent instead
 * of carrying a copy of its path: received JSON may nest deeply.
 */
export function forbiddenKeyIssues(data: unknown): Issue[] {
  const issues: Issue[] = [];
  const pending: WalkNode[] = [{ value: data, key: null, parent: null }];
  for (let node = pending.pop(); node; node = pending.pop()) {
    const { value } = node;
    if (typeof value !== "object" || value === null) continue;
    const entries: [string | number, unknown][] = Array.isArray(value)
      ? value.map((item, i) => [i, item])
      : Object.entries(value);
    for (const [key, item] of entries) {
      if (key === "__proto__")
        issues.push({
          path: pathOf({ value: item, key, parent: node }),
          message: `"__proto__" is not allowed as a key (it names the prototype of a JavaScript object)`,
        });
      else pending.push({ value: item, key, parent: node });
    }
  }
  return issues;
}

interface WalkNode {
  readonly value: unknown;
  readonly key: string | number | null;
  readonly parent: WalkNode | null;
}

function pathOf(node: WalkNode): (string | number)[] {
  const path: (string | number)[] = [];
  for (let at: WalkNode | null = node; at && at.key !== null; at = at.parent) path.unshift(at.key);
  return path;
}
