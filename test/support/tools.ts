import { spawnSync } from "node:child_process";

/**
 * What some tests need beyond npm packages: external programs (socat, mbpoll, mosquitto, chronyd,
 * systemd-analyze, a cross-compiler), root, a tmpfs. On a laptop without them those tests are skipped,
 * loudly; CI provides them and sets GREENWAVE_REQUIRE_ALL_TESTS=1, where a skip fails the run instead.
 */
export function skipLoudly(message: string): false {
  if (process.env.GREENWAVE_REQUIRE_ALL_TESTS === "1")
    throw new Error(`${message} — but GREENWAVE_REQUIRE_ALL_TESTS=1`);
  process.stderr.write(`\n*** ${message} ***\n\n`);
  return false;
}

/** An external program on PATH; `debianPackage` names where it comes from when it is not the program's name. */
export function hasTool(name: string, why: string, debianPackage = name): boolean {
  const found = spawnSync("sh", ["-c", 'command -v "$1"', "sh", name], { stdio: "ignore" }).status === 0;
  return (
    found ||
    skipLoudly(`${name} is not installed: SKIPPING ${why} (apt-get install ${debianPackage}; .ci/run does)`)
  );
}

/** Root, for tests that need it (another user's permissions, mounts). */
export function isRootFor(why: string): boolean {
  return process.getuid?.() === 0 || skipLoudly(`not root: SKIPPING ${why}`);
}

/**
 * Mounts a small tmpfs of `size` on `dir` (a real full disk, a real small filesystem) and returns the
 * function that unmounts it, or null after saying loudly why it cannot (not root, no CAP_SYS_ADMIN).
 */
export function mountTmpfs(dir: string, size: string, why: string): (() => void) | null {
  const result = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], {
    encoding: "utf8",
  });
  if (result.status === 0) return () => void spawnSync("umount", [dir]);
  const problem = (result.stderr || result.error?.message || `exit ${result.status}`).trim();
  skipLoudly(`cannot mount a tmpfs (${problem}; it needs root or CAP_SYS_ADMIN): SKIPPING ${why}`);
  return null;
}
