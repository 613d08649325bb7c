import { defineConfig } from "vitest/config";

/**
 * The package build test (test/packaging/*.slow-test.ts): it builds this machine's .deb and .tar.gz
 * twice, minutes of compiling and compressing, so `npm test` never runs it (its files do not end in
 * .test.ts): `npm run package:test`. The install into a clean Debian root is test/package/'s
 * (vitest.package.config.ts, `npm run package:check`).
 */
export default defineConfig({
  test: {
    name: "package-build",
    include: ["test/packaging/**/*.slow-test.ts"],
    pool: "forks",
    maxWorkers: 1,
    testTimeout: 900_000,
    hookTimeout: 900_000,
  },
});
