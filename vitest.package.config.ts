import { defineConfig } from "vitest/config";

/**
 * The install test of the built package (test/package/): it needs root, a clean Debian root prepared
 * by packaging/verify/verify.sh and a package built for it, so it has its own config and `npm test`
 * never runs it. Run it through `npm run package:check` (amd64, CI) or
 * `npm run package:verify -- --arch arm64`. One file, its tests in order: each builds on the install.
 */
export default defineConfig({
  test: {
    name: "package",
    include: ["test/package/**/*.test.ts"],
    pool: "forks",
    maxWorkers: 1,
    // Emulated arm64 runs Node several times slower: installing and starting are bounded generously,
    // the lamps' timing is held to the same assertions as on the host.
    testTimeout: 600_000,
    hookTimeout: 60_000,
  },
});
