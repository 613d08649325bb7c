import { spawnSync } from "node:child_process";
import { chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { readDatabaseCopy } from "../../gateway/store/durable-latch.js";
import { GatewayStore } from "../../gateway/store/store.js";
import { buildOnce, CLI } from "../e2e/cli.js";
import { isRootFor } from "../support/tools.js";

/**
 * Root at the cabinet (`greenwave fault show`, a gateway started by hand) must not leave files in the
 * service user's store that the service then cannot write: SQLite's WAL and shared memory are created
 * by whoever opens the database.
 */

const NOBODY = 65534;
const isRoot = isRootFor("the store ownership test (it opens a service user's store as root)");
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function serviceUsersStore(): { dataDir: string; dir: string } {
  const dataDir = mkdtempSync(join(tmpdir(), "greenwave-owner-"));
  dirs.push(dataDir);
  chownSync(dataDir, NOBODY, NOBODY);
  const dir = join(dataDir, "x1");
  mkdirSync(dir);
  chownSync(dir, NOBODY, NOBODY);
  return { dataDir, dir };
}

const owners = (dir: string) =>
  readdirSync(dir).map((name) => ({ name, uid: statSync(join(dir, name)).uid }));

describe.skipIf(!isRoot)("a store opened by root in the service user's directory", () => {
  beforeAll(buildOnce, 180_000);

  it("is handed back to the directory's owner, so the service can still write it", () => {
    const { dataDir, dir } = serviceUsersStore();
    const store = GatewayStore.open(dir);
    store.appendEvent({ type: "test", actor: null, detail: {}, atWallMs: Date.now() }, null);
    expect(
      owners(dir).every((f) => f.uid === NOBODY),
      JSON.stringify(owners(dir)),
    ).toBe(true);
    store.close();
    // The latch inspection `fault show` does, read only, as root.
    expect(readDatabaseCopy(join(dir, "gateway.db")).status).toBe("ok");
    expect(
      owners(dir).every((f) => f.uid === NOBODY),
      JSON.stringify(owners(dir)),
    ).toBe(true);
    // The service user opens and writes its store (what failed with SQLITE_READONLY before).
    const asService = spawnSync(
      process.execPath,
      [CLI, "fault", "clear", "--intersection", "x1", "--by", "test", "--data-dir", dataDir],
      { uid: NOBODY, gid: NOBODY, encoding: "utf8", timeout: 20_000 },
    );
    expect(asService.stderr).not.toMatch(/readonly|SQLITE/i);
    expect(asService.status, asService.stderr).toBe(0);
  });
});
