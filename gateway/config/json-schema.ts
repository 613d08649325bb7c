import { z } from "zod";
import { type FileKind, fileSchemas } from "./schema.js";

/**
 * JSON Schema for each config file kind, generated from the zod schemas, for editors (for example
 * the YAML language server: `# yaml-language-server: $schema=../schema/intersection.schema.json`).
 * Cross-field rules (splits against the cycle, stages against the permissive matrix) are not in it:
 * `greenwave config check` is the authority.
 */
export function jsonSchemaFor(kind: FileKind): string {
  const schema = z.toJSONSchema(fileSchemas[kind], { io: "input", unrepresentable: "any" });
  return `${JSON.stringify({ ...schema, title: `greenwave ${kind} file` }, null, 2)}\n`;
}

export const schemaFileName = (kind: FileKind) => `${kind}.schema.json`;
