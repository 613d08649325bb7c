import {
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  truncateSync,
  writeSync,
  closeSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { checkStores } from "../../gateway/doctor/store-check.js";
import { MIGRATIONS } from "../../gateway/store/migrations.js";
import { GatewayStore } from "../../gateway/store/store.js";

const dirs: string[] = [];
const open: GatewayStore[] = [];
afterEach(() => {
  for (const store of open.splice(0)) store.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-doctor-store-"));
  dirs.push(dir);
  return dir;
}

/** A real store of intersection `id`, with `events` audit events; closed unless `keepOpen` (a running gateway). */
function store(root: string, id: string, events = 10, keepOpen = false): GatewayStore {
  const s = GatewayStore.open(join(root, id));
  s.lazily(() => {
    for (let i = 0; i < events; i++)
      s.appendEvent(
        {
          atWallMs: 1_700_000_000_000 + i,
          type: "plan-activated",
          actor: "alice",
          detail: { plan: "am-peak", i },
        },
        (seq) => ({
          topic: `greenwave/main-street/${id}/events`,
          payload: JSON.stringify({ seq, pad: "x".repeat(300) }),
        }),
      );
  });
  s.syncLazyWrites();
  if (keepOpen) open.push(s);
  else s.close();
  return s;
}

describe("greenwave doctor: the store", () => {
  it("a healthy store of a stopped gateway: integrity, schema and latch record, and no trace left", async () => {
    const root = dataDir();
    store(root, "elm");
    const before = readdirSync(join(root, "elm")).sort();
    const [result] = checkStores(root, "elm");
    expect(result).toEqual({
      check: "store elm",
      status: "PASS",
      detail: `${join(root, "elm")}: integrity ok, schema ${MIGRATIONS.length} (this greenwave's); latch.rec readable (slot A, seq 1); no fault latched`,
      action: null,
    });
    // Read from a copy: no -wal/-shm made beside the gateway's store (as root they would lock it out).
    expect(readdirSync(join(root, "elm")).sort()).toEqual(before);
  });

  it("the store of a running gateway is read in place through its WAL", () => {
    const root = dataDir();
    store(root, "elm", 10, true);
    expect(readdirSync(join(root, "elm"))).toContain("gateway.db-wal");
    const [result] = checkStores(root, "elm");
    expect(result?.status).toBe("PASS");
  });

  it("a damaged store (pages overwritten): FAIL with what integrity_check found and what to do", () => {
    const root = dataDir();
    store(root, "elm", 2000);
    const file = join(root, "elm", "gateway.db");
    const size = statSync(file).size;
    const fd = openSync(file, "r+");
    // Garbage over pages in the middle of the file: b-tree pages of the events and outbox tables.
    writeSync(fd, Buffer.alloc(4096 * 4, 0xa5), 0, 4096 * 4, Math.floor(size / 2 / 4096) * 4096);
    closeSync(fd);
    const [result] = checkStores(root, "elm");
    expect(result?.status).toBe("FAIL");
    expect(result?.detail).toContain(`${file} is damaged (`);
    expect(result?.action).toContain("restore the newest backup");
  });

  it("a truncated store: FAIL", () => {
    const root = dataDir();
    store(root, "elm", 2000);
    const file = join(root, "elm", "gateway.db");
    truncateSync(file, Math.floor(statSync(file).size / 3));
    const [result] = checkStores(root, "elm");
    expect(result?.status).toBe("FAIL");
    expect(result?.detail).toContain("is damaged");
  });

  it("a latched fault: a WARN with the fault and how to look at it", () => {
    const root = dataDir();
    const s = GatewayStore.open(join(root, "elm"));
    s.save({
      kind: "conflict",
      groups: ["M", "S"],
      message: "M and S green together",
      atWallMs: 1_700_000_000_000,
    });
    s.close();
    const [result] = checkStores(root, "elm");
    expect(result?.status).toBe("WARN");
    expect(result?.detail).toContain(
      "fault latched: conflict: M and S green together (since 2023-11-14T22:13:20.000Z)",
    );
    expect(result?.action).toContain("greenwave fault show --intersection elm");
  });

  it("the latch record without its database: the store is lost, FAIL", () => {
    const root = dataDir();
    store(root, "elm");
    rmSync(join(root, "elm", "gateway.db"));
    const [result] = checkStores(root, "elm");
    expect(result?.status).toBe("FAIL");
    expect(result?.detail).toContain(
      "the gateway would start in flash with a store-lost fault; " +
        join(root, "elm", "gateway.db") +
        " is missing",
    );
  });

  it("an unreadable latch record: FAIL", () => {
    const root = dataDir();
    store(root, "elm");
    writeFileSync(join(root, "elm", "latch.rec"), Buffer.alloc(4096, 0x5a));
    const [result] = checkStores(root, "elm");
    expect(result?.status).toBe("FAIL");
    expect(result?.detail).toContain("the latch record latch.rec is unreadable (no valid slot");
  });

  it("a schema newer than this greenwave's: FAIL, the gateway would refuse it", () => {
    const root = dataDir();
    store(root, "elm");
    const db = new Database(join(root, "elm", "gateway.db"));
    db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    db.close();
    const [result] = checkStores(root, "elm");
    expect(result?.status).toBe("FAIL");
    expect(result?.detail).toContain(
      `schema ${MIGRATIONS.length + 1} is newer than this greenwave's ${MIGRATIONS.length}`,
    );
  });

  it("every store under the data directory, and the configured one before its first start", () => {
    const root = dataDir();
    store(root, "oak");
    mkdirSync(join(root, "backups"));
    const results = checkStores(root, "elm");
    expect(results.map((r) => [r.check, r.status])).toEqual([
      ["store elm", "PASS"],
      ["store oak", "PASS"],
    ]);
    expect(results[0]?.detail).toContain("no store yet");
  });

  it("a data directory that does not exist: a WARN", () => {
    const [result] = checkStores(join(dataDir(), "missing"), "elm");
    expect(result).toMatchObject({ check: "store elm", status: "WARN" });
    expect(result?.detail).toContain("does not exist");
  });
});
