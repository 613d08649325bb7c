import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { checkDisk } from "../../gateway/doctor/disk-check.js";
import { mountTmpfs } from "../support/tools.js";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-doctor-disk-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A real tmpfs of `size` (unmounted after the test), or null once it has said loudly why not. */
function smallFilesystem(size: string): string | null {
  const dir = tempDir();
  const umount = mountTmpfs(
    dir,
    size,
    "the doctor's disk check on a small filesystem (the injected thresholds still run)",
  );
  if (!umount) return null;
  cleanups.push(umount);
  return dir;
}

describe("greenwave doctor: free disk on the data directory's filesystem (statfs)", () => {
  it("on real small filesystems: FAIL under 50 MB, WARN under 200 MB, PASS above", (context) => {
    const small = smallFilesystem("40m");
    if (!small) return context.skip();
    const fail = checkDisk(small);
    expect(fail.status).toBe("FAIL");
    expect(fail.detail).toBe(
      `40 MB free of 40 MB on the filesystem of ${small}, under 50 MB: the store may soon not be able to write`,
    );
    expect(fail.action).toContain("journalctl --vacuum-size");
    const medium = smallFilesystem("120m") as string;
    expect(checkDisk(medium)).toMatchObject({ status: "WARN" });
    expect(checkDisk(medium).detail).toContain(
      "under 200 MB: little room for an upgrade and its store backup",
    );
    const large = smallFilesystem("260m") as string;
    expect(checkDisk(large)).toEqual({
      check: "disk",
      status: "PASS",
      detail: `260 MB free of 260 MB on the filesystem of ${large}`,
      action: null,
    });
  });

  it("a data directory not made yet: the filesystem it will be made on", () => {
    const dir = tempDir();
    const result = checkDisk(join(dir, "var", "lib", "greenwave"), { failBytes: 0, warnBytes: 0 });
    expect(result.status).toBe("PASS");
    expect(result.detail).toContain(
      `on the filesystem of ${dir} (${join(dir, "var", "lib", "greenwave")} does not exist yet)`,
    );
  });

  it("thresholds against the real free space of this machine's temp directory", () => {
    const dir = tempDir();
    expect(
      checkDisk(dir, { failBytes: Number.MAX_SAFE_INTEGER, warnBytes: Number.MAX_SAFE_INTEGER }).status,
    ).toBe("FAIL");
    expect(checkDisk(dir, { failBytes: 0, warnBytes: Number.MAX_SAFE_INTEGER }).status).toBe("WARN");
    expect(checkDisk(dir, { failBytes: 0, warnBytes: 0 }).status).toBe("PASS");
  });
});
