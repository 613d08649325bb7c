import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { GatewayStore } from "../../gateway/store/store.js";
import { buildOnce } from "../e2e/cli.js";
import { cleanupProcesses, cli, dirs } from "../e2e/processes.js";

/**
 * `greenwave events export` as an attacker (or a bad day at the cabinet) drives it: instants outside
 * what a Date can hold, an --output it cannot write, and stores that are empty, truncated, corrupt,
 * a directory, or from before the event log. Every answer: exit 1 or 2 with a sentence, never a stack
 * trace, never the internal-error exit 70.
 */

beforeAll(() => buildOnce(), 180_000);
afterEach(() => cleanupProcesses());

const STACK = /\n\s+at |internal error|Unhandled 'error'/;

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-attack-export-"));
  dirs.push(dir);
  return dir;
}

/** A real store with `count` rows of the event log under `<dir>/<id>/gateway.db`. */
function storeWithRows(dir: string, id: string, count: number): string {
  const at = join(dir, id);
  mkdirSync(at, { recursive: true });
  const store = GatewayStore.open(at);
  store.reserveHiResSeqs(count);
  const rows = Array.from({ length: count }, (_, k) => ({
    seq: k + 1,
    atMs: 1_800_000_000_000 + k * 100,
    code: 1,
    param: 2,
  }));
  for (let i = 0; i < count; i += 5000) store.appendHiRes(rows.slice(i, i + 5000));
  store.close();
  return join(at, "gateway.db");
}

/** 101 times the longest duration a part may have: 101 × 999,999 days back, past what a Date can hold (±8.64e15 ms). */
const BEYOND_DATE_RANGE = "999999d".repeat(101);

describe("greenwave events export under hostile input", () => {
  it("an --until further back than a Date can hold is a usage error, not an internal error", () => {
    const dir = dataDir();
    storeWithRows(dir, "elm", 10);
    const run = cli([
      "events",
      "export",
      "--intersection",
      "elm",
      "--data-dir",
      dir,
      "--since",
      "1s",
      "--until",
      BEYOND_DATE_RANGE,
    ]);
    expect(run.stderr).not.toMatch(STACK);
    expect(run.status, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/--until/);
  });

  it("an --output it cannot open (a missing directory, a directory) is refused with a sentence, not a stack trace", () => {
    const dir = dataDir();
    storeWithRows(dir, "elm", 10);
    for (const output of [join(dir, "no", "such", "dir", "x.csv"), dir]) {
      const run = cli(["events", "export", "--intersection", "elm", "--data-dir", dir, "--output", output]);
      expect(run.stderr, output).not.toMatch(STACK);
      expect([1, 2], `${output}: exit ${run.status}\n${run.stderr}`).toContain(run.status);
      expect(run.stderr).toContain(output);
    }
  });

  it("empty, truncated, corrupt, directory-shaped and pre-event-log stores: exit 1 with what is wrong, or no rows", () => {
    const dir = dataDir();
    // Zero bytes.
    mkdirSync(join(dir, "zero"));
    writeFileSync(join(dir, "zero", "gateway.db"), "");
    // Not SQLite at all.
    mkdirSync(join(dir, "garbage"));
    writeFileSync(join(dir, "garbage", "gateway.db"), Buffer.alloc(8192, 0x5a));
    // A directory where the store should be.
    mkdirSync(join(dir, "dir", "gateway.db"), { recursive: true });
    // A real store cut off at 60 % (a card pulled mid-copy).
    const cut = storeWithRows(dir, "cut", 20_000);
    const whole = readFileSync(cut);
    writeFileSync(cut, whole.subarray(0, Math.floor(whole.length * 0.6)));
    // A real store with one page in the middle of the event log overwritten.
    const torn = storeWithRows(dir, "torn", 20_000);
    const bytes = readFileSync(torn);
    const page = Math.floor((bytes.length * 0.7) / 4096) * 4096;
    bytes.fill(0xa5, page, page + 4096);
    writeFileSync(torn, bytes);
    for (const id of ["zero", "garbage", "dir", "cut", "torn"]) {
      const run = cli(["events", "export", "--intersection", id, "--data-dir", dir]);
      expect(run.stderr, id).not.toMatch(STACK);
      expect(run.status, `${id}: ${run.stderr}`).toBe(1);
      expect(run.stderr, id).toMatch(/gateway\.db/);
    }

    // A store from before the event log (schema 6, no hires_events table): no rows, said so, exit 0.
    const old = storeWithRows(dir, "old", 1);
    const db = new Database(old);
    db.exec("DROP TABLE hires_events");
    db.pragma("user_version = 6");
    db.close();
    const run = cli(["events", "export", "--intersection", "old", "--data-dir", dir]);
    expect(run.stderr).not.toMatch(STACK);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toBe("TimeStamp,DeviceId,EventId,Parameter\n");
    expect(run.stderr).toMatch(/no events in that range/);
  }, 60_000);
});
