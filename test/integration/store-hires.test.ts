import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_STORE_LIMITS, GatewayStore } from "../../gateway/store/store.js";
import { StoreReader } from "../../gateway/store/store-reader.js";

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-hires-"));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const all = { sinceWallMs: null, untilWallMs: null, afterSeq: 0, limit: 5000 } as const;

function rows(first: number, count: number, atMs = 1_000_000) {
  return Array.from({ length: count }, (_, k) => ({
    seq: first + k,
    atMs: atMs + k * 100,
    code: 1,
    param: 2,
  }));
}

describe("the event log in the store (SQLite on disk)", () => {
  it("reserves sequence numbers on disk: a reopened store never hands out a number it gave before, even one never written", () => {
    const dir = tempDir();
    let store = GatewayStore.open(dir);
    const a = store.reserveHiResSeqs(1000);
    expect(a).toEqual({ first: 1, last: 1000 });
    store.appendHiRes(rows(1, 10)); // 11..1000 were handed out live and lost with a crash
    store.close();
    store = GatewayStore.open(dir);
    const b = store.reserveHiResSeqs(1000);
    expect(b.first).toBe(1001);
    store.close();
  });

  it("reads by time and by resume point, in sequence order", () => {
    const store = GatewayStore.open(tempDir());
    store.reserveHiResSeqs(100);
    store.appendHiRes(rows(1, 50));
    expect(store.hiResEvents(all)).toHaveLength(50);
    const window = store.hiResEvents({ ...all, sinceWallMs: 1_000_500, untilWallMs: 1_001_000 });
    expect(window.map((r) => r.seq)).toEqual([6, 7, 8, 9, 10]);
    expect(store.hiResEvents({ ...all, afterSeq: 45 }).map((r) => r.seq)).toEqual([46, 47, 48, 49, 50]);
    expect(store.hiResEvents({ ...all, limit: 3 }).map((r) => r.seq)).toEqual([1, 2, 3]);
    store.close();
  });

  it("keeps at most its bound: the oldest rows go first, and the store counts them", () => {
    const store = GatewayStore.open(tempDir(), { ...DEFAULT_STORE_LIMITS, maxHiResEvents: 100 });
    store.reserveHiResSeqs(1000);
    let pruned = 0;
    for (let batch = 0; batch < 5; batch++) pruned += store.appendHiRes(rows(1 + batch * 60, 60));
    const kept = store.hiResEvents(all);
    expect(kept).toHaveLength(100);
    expect(kept[0]?.seq).toBe(201);
    expect(kept.at(-1)?.seq).toBe(300);
    expect(pruned).toBe(200);
    expect(store.hiResPruned).toBe(200);
    store.close();
  });

  it("a week of a fixed-time intersection fits in well under the bound, in a few MB (the figure docs/event-log.md quotes)", () => {
    const dir = tempDir();
    const store = GatewayStore.open(dir);
    // A day of the busiest example intersection (oak: 5 groups, 80 s cycle): about 25 rows a cycle.
    const perDay = Math.round((86_400 / 80) * 25);
    store.reserveHiResSeqs(perDay);
    for (let k = 0; k < perDay; k += 256)
      store.appendHiRes(rows(1 + k, Math.min(256, perDay - k), 1_000_000 + k * 100));
    store.close();
    const bytesPerRow = statSync(join(dir, "gateway.db")).size / perDay;
    expect(perDay * 7).toBeLessThan(DEFAULT_STORE_LIMITS.maxHiResEvents);
    expect(bytesPerRow).toBeLessThan(60);
  });

  it("the read-only reader beside a running gateway sees the same rows, and never writes", () => {
    const dir = tempDir();
    const store = GatewayStore.open(dir);
    store.reserveHiResSeqs(10);
    store.appendHiRes(rows(1, 10));
    const reader = StoreReader.open(store.file);
    expect(reader.hiRes(all)).toEqual(store.hiResEvents(all));
    reader.close();
    store.close();
  });
});

describe("a page of a full event log: no sort of the whole table on the lamp loop", () => {
  it("a wide window is read along the primary key (no temporary sort), a narrow one through the time index; both give the same rows as a plain filter", async () => {
    const { PAGE_BY_SEQ, PAGE_BY_TIME } = await import("../../gateway/store/hires-records.js");
    const Database = (await import("better-sqlite3")).default;
    const dir = tempDir();
    GatewayStore.open(dir).close();
    const db = new Database(join(dir, "gateway.db"));
    try {
      db.exec(`WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 60000)
        INSERT INTO hires_events (seq, at_ms, code, param) SELECT k, 1800000000000 + k * 100, 1, 2 FROM n`);
      db.exec("ANALYZE");
      const plan = (sql: string) =>
        (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(0, 0, 1, 10) as { detail: string }[])
          .map((r) => r.detail)
          .join("; ");
      expect(plan(PAGE_BY_SEQ)).not.toMatch(/TEMP B-TREE/);
      expect(plan(PAGE_BY_SEQ)).not.toMatch(/hires_by_time/);
      expect(plan(PAGE_BY_TIME)).toMatch(/hires_by_time/);
    } finally {
      db.close();
    }
    const store = GatewayStore.open(dir);
    try {
      const t0 = 1_800_000_000_000;
      const brute = (since: number, until: number, after: number) => {
        const out: number[] = [];
        for (let k = after + 1; k <= 60000 && out.length < 5000; k++) {
          const at = t0 + k * 100;
          if (at >= since && at < until) out.push(k);
        }
        return out;
      };
      for (const [since, until, after] of [
        [t0, t0 + 6_100_000, 0], // every row: read by seq
        [t0 + 100_000, t0 + 101_000, 0], // ten rows: the index
        [t0, t0 + 6_100_000, 30_000], // paging on from the middle
      ] as const) {
        const page = store.hiResEvents({
          sinceWallMs: since,
          untilWallMs: until,
          afterSeq: after,
          limit: 5000,
        });
        expect(page.map((r) => r.seq)).toEqual(brute(since, until, after));
      }
    } finally {
      store.close();
    }
  });
});
