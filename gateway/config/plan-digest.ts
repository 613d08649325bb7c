import { createHash } from "node:crypto";
import { canonicalJson } from "../core/canonical-json.js";
import type { PlanFile } from "./schema.js";

/**
 * A plan's content digest: sha256 (hex) of the plan file as its schema reads it — every field, the
 * description too, with the schema's defaults filled in — written as canonical JSON (RFC 8785, see
 * core/canonical-json.ts). So YAML or JSON, comments, indentation, quoting, flow or block style, key
 * order, and writing a default out or leaving it implicit do not change it; any value that does change
 * is a different content. With the plan's id and version it is the plan's identity
 * (core/corridor/plan-identity.ts).
 *
 * The whole file, not one intersection's part: a change for one intersection is a new content for
 * the corridor, so every intersection that knows the version refuses it.
 */
export function planDigest(plan: PlanFile): string {
  return createHash("sha256").update(canonicalJson(plan), "utf8").digest("hex");
}
