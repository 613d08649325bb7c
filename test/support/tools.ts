import { spawnSync } from "node:child_process";

/**
 * External programs some tests drive (socat, mbpoll, mosquitto). On a laptop without them those tests
 * are skipped, loudly; CI installs them and sets GREENWAVE_REQUIRE_ALL_TESTS=1, where a missing tool
 * fails the run instead of skipping.
 */
export function hasTool(name: string, why: string): boolean {
  const found = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).status === 0;
  if (found) return true;
  const message = `${name} is not installed: SKIPPING ${why} (apt-get install ${name}; .ci/run does)`;
  if (process.env.GREENWAVE_REQUIRE_ALL_TESTS === "1")
    throw new Error(`${message} — but GREENWAVE_REQUIRE_ALL_TESTS=1`);
  process.stderr.write(`\n*** ${message} ***\n\n`);
  return false;
}

/** Root, for tests that need it (another user's permissions, mounts); loud when skipping, fatal in CI. */
export function isRootFor(why: string): boolean {
  if (process.getuid?.() === 0) return true;
  const message = `not root: SKIPPING ${why}`;
  if (process.env.GREENWAVE_REQUIRE_ALL_TESTS === "1")
    throw new Error(`${message} — but GREENWAVE_REQUIRE_ALL_TESTS=1`);
  process.stderr.write(`\n*** ${message} ***\n\n`);
  return false;
}
