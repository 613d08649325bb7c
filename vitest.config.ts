import { defineConfig } from "vitest/config";
import { DurationSequencer } from "./test/duration-sequencer.js";

/**
 * Tests that hold the lamps' timing to a tick under load (the flood test) run alone, after everything
 * else: on a 2-core machine another heavy test file beside them (the chaos test's dozen processes, the
 * 500 simulation seeds) is load the gateway cannot be asked to absorb, and would make them flaky.
 */
const ALONE = ["test/e2e/flood.test.ts"];

const shared = {
  testTimeout: 30_000,
  hookTimeout: 30_000,
  pool: "forks" as const,
};

export default defineConfig({
  test: {
    // Longest files first, by the recorded durations (test/duration-sequencer.ts).
    sequence: { sequencer: DurationSequencer },
    projects: [
      {
        test: {
          ...shared,
          name: "suite",
          include: ["test/**/*.test.ts"],
          // The installed package's test needs root and a Debian root: vitest.package.config.ts runs it.
          exclude: [...ALONE, "test/package/**"],
          // End-to-end files mostly wait on processes and timers: run more of them at once than there are cores.
          maxWorkers: 4,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          ...shared,
          name: "alone",
          include: ALONE,
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
