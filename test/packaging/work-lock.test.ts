import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PackagingError } from "../../packaging/errors.js";
import { lockWorkDir } from "../../packaging/work-lock.js";

/** Two builds into one output directory would delete each other's work: the second is refused. */
const dir = mkdtempSync(join(tmpdir(), "greenwave-lock-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the build's work-directory lock", () => {
  it("refuses a second build while the first runs, and frees the lock when it ends", () => {
    const lock = join(dir, ".work-arm64.lock");
    const unlock = lockWorkDir(lock, "arm64 into /out");
    expect(() => lockWorkDir(lock, "arm64 into /out")).toThrow(PackagingError);
    expect(() => lockWorkDir(lock, "arm64 into /out")).toThrow(
      `another build of arm64 into /out is running (pid ${process.pid}, ${lock})`,
    );
    unlock();
    expect(existsSync(lock)).toBe(false);
    lockWorkDir(lock, "arm64 into /out")();
  });

  it("takes over the lock of a build that was killed", () => {
    const lock = join(dir, ".work-amd64.lock");
    // A pid that was a process and is no more: a child that has exited.
    const gone = spawnSync("sh", ["-c", "echo $$"], { encoding: "utf8" }).stdout.trim();
    writeFileSync(lock, gone);
    const unlock = lockWorkDir(lock, "amd64 into /out");
    unlock();
  });
});
