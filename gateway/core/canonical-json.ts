/**
 * One text for one JSON value, whatever order its keys were written or built in: the JSON
 * Canonicalization Scheme (RFC 8785) for the values greenwave canonicalises — plain objects, arrays,
 * strings, finite numbers, booleans and null. Object keys are sorted by UTF-16 code units (what
 * `Array.prototype.sort` compares) and numbers and strings are written as `JSON.stringify` writes them,
 * which is what RFC 8785 prescribes; no whitespace. Hand-written rather than `JSON.stringify` with
 * sorted keys because JavaScript puts integer-like keys ("12", an intersection id may be one) first
 * whatever the order they were given in, which is deterministic but not the RFC's order.
 *
 * Pure; a value that JSON cannot carry faithfully (a non-finite number, a function, a bigint, a
 * symbol) is a programming error and throws a TypeError: a digest must never silently stand for data
 * it does not describe.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "string":
    case "boolean":
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON has no ${String(value)}`);
      return JSON.stringify(value);
    case "object": {
      if (Array.isArray(value))
        // As JSON: an array's holes and undefined members are null.
        return `[${value.map((member: unknown) => (member === undefined ? "null" : canonicalJson(member))).join(",")}]`;
      const record = value as Record<string, unknown>;
      const members = Object.keys(record)
        .filter((key) => record[key] !== undefined) // as JSON: an undefined member is absent
        .sort()
        .map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`);
      return `{${members.join(",")}}`;
    }
    default:
      throw new TypeError(`canonical JSON has no ${typeof value}`);
  }
}
