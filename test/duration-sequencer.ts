import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * Longest test files first, by the durations a full run recorded (test/durations.json, written by `npm
 * run test:durations` from vitest's own cache), so that four workers end together: in a fresh clone
 * vitest has no cache and starts the largest files first, and a long file with a short source (the
 * Modbus TCP end-to-end test is 89 bytes and runs three minutes) started last stretched the suite by
 * minutes. This machine's own cache, when it has a file, wins: it is newer. A file neither knows (a new
 * one) goes first, as vitest does: it may be long.
 */
const RECORDED: Readonly<Record<string, number>> = (() => {
  try {
    return JSON.parse(readFileSync(new URL("./durations.json", import.meta.url), "utf8")) as Record<
      string,
      number
    >;
  } catch {
    return {};
  }
})();

export class DurationSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const key = (spec: TestSpecification) =>
      `${spec.project.name}:${relative(this.ctx.config.root, spec.moduleId)}`;
    const seconds = (spec: TestSpecification): number | null => {
      const cached = this.ctx.cache.getFileTestResults(key(spec));
      if (cached) return cached.duration / 1000;
      return RECORDED[key(spec)] ?? null;
    };
    return [...files].sort((a, b) => {
      const groups = a.project.config.sequence.groupOrder - b.project.config.sequence.groupOrder;
      if (groups !== 0) return groups;
      const [da, db] = [seconds(a), seconds(b)];
      if (da === null || db === null)
        return da === null && db !== null ? -1 : db === null && da !== null ? 1 : 0;
      return db - da;
    });
  }
}
