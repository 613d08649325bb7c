import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Document, isScalar, visit } from "yaml";
import { planDigest } from "../../gateway/config/plan-digest.js";
import { type PlanFile, planFileSchema } from "../../gateway/config/schema.js";
import { validate } from "../../gateway/config/validate.js";
import { parseYamlText } from "../../gateway/config/yaml-file.js";
import { canonicalJson } from "../../gateway/core/canonical-json.js";

/**
 * A plan's content digest (issue 19, item 4) is what tells two contents of one (id, version) apart.
 * It must not see how a file is written (YAML or JSON, comments, indentation, quoting, flow or block,
 * key order, a default written out or left implicit), and must see every value that is written.
 */

/** The plan file as a gateway reads it: YAML text, parsed, through the plan file's schema. */
const digestOfText = (text: string) => planDigest(validate(planFileSchema, parseYamlText("plan.yaml", text)));

const id = fc.stringMatching(/^[a-z][a-z0-9-]{0,5}$/);
const percent = fc.integer({ min: 0, max: 50 });
const part = fc.record(
  {
    offsetSeconds: fc.oneof(fc.integer({ min: 0, max: 199 }), fc.double({ min: 0, max: 199, noNaN: true })),
    offsetReference: fc.constantFrom("start-of-green", "end-of-green"),
    coordinatedStage: id,
    correction: fc.oneof(
      fc.record({ mode: fc.constant("dwell"), maxDwellPercent: percent }),
      fc.record({ mode: fc.constant("shortway"), maxLengthenPercent: percent, maxShortenPercent: percent }),
    ),
    stages: fc.array(
      fc.record({
        id,
        groups: fc.array(id, { maxLength: 4 }),
        splitSeconds: fc.integer({ min: 1, max: 120 }),
      }),
      { minLength: 1, maxLength: 4 },
    ),
  },
  // offsetReference may be left to its default.
  { requiredKeys: ["offsetSeconds", "coordinatedStage", "correction", "stages"] },
);
const planData = fc.record(
  {
    kind: fc.constant("plan"),
    id,
    version: fc.integer({ min: 1, max: 99 }),
    corridor: id,
    description: fc.string({ maxLength: 40 }),
    cycleSeconds: fc.integer({ min: 10, max: 200 }),
    intersections: fc.dictionary(id, part, { minKeys: 1, maxKeys: 4 }),
  },
  { requiredKeys: ["kind", "id", "version", "corridor", "cycleSeconds", "intersections"] },
);

/** The same data with every object's keys in another order (`order`: one shuffle seed per object). */
function shuffled(value: unknown, random: () => number): unknown {
  if (Array.isArray(value)) return value.map((v) => shuffled(v, random));
  if (typeof value !== "object" || value === null) return value;
  const entries = Object.entries(value).map(([k, v]) => [k, shuffled(v, random)] as const);
  for (let i = entries.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [entries[i], entries[j]] = [
      entries[j] as (typeof entries)[number],
      entries[i] as (typeof entries)[number],
    ];
  }
  return Object.fromEntries(entries);
}

/** Every default of a plan part written out explicitly (the schema would fill it in anyway). */
function withDefaultsWritten(data: Record<string, unknown>): Record<string, unknown> {
  const parts = data.intersections as Record<string, Record<string, unknown>>;
  return {
    ...data,
    intersections: Object.fromEntries(
      Object.entries(parts).map(([k, p]) => [k, { offsetReference: "start-of-green", ...p }]),
    ),
  };
}

interface Style {
  readonly seed: number;
  readonly json: boolean;
  readonly indent: number;
  readonly flow: boolean;
  readonly quote: "PLAIN" | "QUOTE_DOUBLE" | "QUOTE_SINGLE";
  readonly comments: boolean;
  readonly defaultsWritten: boolean;
}

const style: fc.Arbitrary<Style> = fc.record({
  seed: fc.integer(),
  json: fc.boolean(),
  indent: fc.integer({ min: 1, max: 6 }),
  flow: fc.boolean(),
  quote: fc.constantFrom("PLAIN", "QUOTE_DOUBLE", "QUOTE_SINGLE"),
  comments: fc.boolean(),
  defaultsWritten: fc.boolean(),
});

/** One way of writing the data as a plan file. */
function render(data: Record<string, unknown>, s: Style): string {
  let state = s.seed;
  const random = () => {
    state = (Math.imul(state, 1_103_515_245) + 12_345) | 0;
    return ((state >>> 8) & 0xffff) / 0x10000;
  };
  const value = shuffled(s.defaultsWritten ? withDefaultsWritten(data) : data, random);
  if (s.json) return JSON.stringify(value, null, s.indent);
  const doc = new Document(value);
  if (s.comments) {
    doc.commentBefore = " a plan, written by hand";
    visit(doc, {
      Pair(_, pair) {
        if (isScalar(pair.key) && random() < 0.3)
          pair.key.commentBefore = ` note ${Math.floor(random() * 100)}`;
      },
    });
  }
  return doc.toString({
    indent: s.indent,
    collectionStyle: s.flow ? "flow" : "block",
    defaultStringType: s.quote,
    defaultKeyType: "PLAIN",
  });
}

/** Every leaf (a number or a string) of the data, by its path. */
function leaves(value: unknown, path: (string | number)[] = []): (string | number)[][] {
  if (typeof value === "number" || typeof value === "string") return [path];
  if (Array.isArray(value)) return value.flatMap((v, i) => leaves(v, [...path, i]));
  if (typeof value === "object" && value !== null)
    return Object.entries(value).flatMap(([k, v]) => leaves(v, [...path, k]));
  return [];
}

/** The data with one leaf changed to another value of its type. */
function changedAt(data: unknown, path: readonly (string | number)[]): unknown {
  const copy = structuredClone(data) as Record<string | number, unknown>;
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path.at(-1) as string | number;
  const old = node[last];
  node[last] = typeof old === "number" ? old + 0.5 : `${String(old)}x`;
  return copy;
}

describe("canonical JSON (RFC 8785 for plain JSON data)", () => {
  it("is one text for one value: key order does not matter, and the text reads back as the value", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer(), (raw, seed) => {
        const value = JSON.parse(JSON.stringify(raw)) as unknown; // as JSON carries it (-0 is 0)
        let state = seed;
        const random = () => ((state = (Math.imul(state, 48_271) + 1) | 0) >>> 0) / 2 ** 32;
        expect(canonicalJson(shuffled(value, random))).toBe(canonicalJson(value));
        expect(JSON.parse(canonicalJson(value))).toEqual(value);
      }),
      { numRuns: 300 },
    );
  });

  it("sorts keys by UTF-16 code units, integer-like ones too (JavaScript's own order puts those first)", () => {
    expect(canonicalJson({ b: 1, "9": 2, "12": 3, a: [true, null, "é"] })).toBe(
      '{"12":3,"9":2,"a":[true,null,"é"],"b":1}',
    );
    expect(canonicalJson({ x: 1e21, y: 0.1, z: -0 })).toBe('{"x":1e+21,"y":0.1,"z":0}');
  });

  it("refuses what JSON cannot carry faithfully instead of digesting something else", () => {
    expect(() => canonicalJson({ cycle: Number.NaN })).toThrow(TypeError);
    expect(() => canonicalJson({ cycle: Number.POSITIVE_INFINITY })).toThrow(TypeError);
    expect(() => canonicalJson({ f: () => 1 })).toThrow(TypeError);
  });
});

describe("a plan's content digest", () => {
  it("does not change with how the file is written", () => {
    fc.assert(
      fc.property(planData, style, style, (data, a, b) => {
        const first = digestOfText(render(data, a));
        expect(digestOfText(render(data, b))).toBe(first);
        expect(first).toMatch(/^[0-9a-f]{64}$/);
      }),
      { numRuns: 200 },
    );
  });

  it("changes with any value written in it", () => {
    fc.assert(
      fc.property(
        planData.chain((data) => fc.tuple(fc.constant(data), fc.constantFrom(...leaves(data)))),
        ([data, path]) => {
          const before = planDigest(data as PlanFile);
          expect(planDigest(changedAt(data, path) as PlanFile), `changed at ${path.join(".")}`).not.toBe(
            before,
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it("changes with the order of the stages, and with an intersection's part renamed", () => {
    fc.assert(
      fc.property(planData, (data) => {
        const parts = Object.entries(data.intersections);
        const [firstId, first] = parts[0] as [string, (typeof parts)[number][1]];
        const before = planDigest(data as PlanFile);
        const renamed = { ...data, intersections: { ...data.intersections, [`${firstId}z`]: first } };
        delete (renamed.intersections as Record<string, unknown>)[firstId];
        expect(planDigest(renamed as PlanFile)).not.toBe(before);
        const stages = first.stages;
        if (stages.length > 1 && canonicalJson(stages[0]) !== canonicalJson(stages.at(-1))) {
          const reordered = {
            ...data,
            intersections: { ...data.intersections, [firstId]: { ...first, stages: [...stages].reverse() } },
          };
          expect(planDigest(reordered as PlanFile)).not.toBe(before);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("of a shipped plan: the same whatever its comments and number style, another when a split changes", () => {
    const text = readFileSync("config/plans/am-peak.yaml", "utf8");
    const digest = digestOfText(text);
    const restyled = `# reviewed 2026-11-20\n${text
      .replace(/^# .*\n/gm, "")
      .replace("splitSeconds: 60 }", "splitSeconds: 60.0 } # the main street")
      .replace("    offsetReference: start-of-green\n", "")}`;
    expect(restyled).not.toBe(text);
    expect(digestOfText(restyled)).toBe(digest);
    expect(digestOfText(text.replace("splitSeconds: 60 }", "splitSeconds: 59 }"))).not.toBe(digest);
  });
});
