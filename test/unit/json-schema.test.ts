import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { jsonSchemaFor, schemaFileName } from "../../gateway/config/json-schema.js";
import { type FileKind, fileSchemas } from "../../gateway/config/schema.js";

describe("committed JSON Schemas", () => {
  for (const kind of Object.keys(fileSchemas) as FileKind[]) {
    it(`config/schema/${schemaFileName(kind)} matches the zod schema (regenerate: greenwave config schema)`, () => {
      expect(readFileSync(`config/schema/${schemaFileName(kind)}`, "utf8")).toBe(jsonSchemaFor(kind));
    });
  }
});
