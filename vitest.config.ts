import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // End-to-end files mostly wait on processes and timers: run more of them at once than there are cores.
    pool: "forks",
    maxWorkers: 4,
  },
});
