import { spawnSync } from "node:child_process";

/**
 * The packaging tests' tools that are not npm packages (systemd-analyze, gcc, a cross-compiler), with
 * their Debian package: missing, a test is skipped loudly; under GREENWAVE_REQUIRE_ALL_TESTS=1 (CI)
 * the test fails instead (test/support/tools.ts, which names the package after the tool).
 */
export function hasTool(name: string, debianPackage: string, why: string): boolean {
  const found = spawnSync("sh", ["-c", 'command -v "$1"', "sh", name], { stdio: "ignore" }).status === 0;
  if (found) return true;
  const message = `${name} is not installed: SKIPPING ${why} (apt-get install ${debianPackage})`;
  if (process.env.GREENWAVE_REQUIRE_ALL_TESTS === "1")
    throw new Error(`${message} — but GREENWAVE_REQUIRE_ALL_TESTS=1`);
  process.stderr.write(`\n*** ${message} ***\n\n`);
  return false;
}
