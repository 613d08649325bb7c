import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import { inspectLatch, type LatchInspection } from "../store/durable-latch.js";
import { LATCH_RECORD_FILE } from "../store/latch-record.js";
import { MIGRATIONS } from "../store/migrations.js";
import { STORE_FILE } from "../store/store.js";
import { type CheckResult, type CheckStatus, fail, pass, warn } from "./check-result.js";

/** Rows of a failed integrity check shown; the rest is counted. */
const PROBLEMS_SHOWN = 3;

interface Finding {
  readonly status: CheckStatus;
  readonly text: string;
  readonly action: string | null;
}

/**
 * Each gateway store under the data directory (`<data-dir>/<intersection>/gateway.db` and its latch
 * record), and the configured intersection's even when it has none yet: the SQLite integrity checks,
 * the schema version against this greenwave's, and what the latch record and database say.
 *
 * Read only, and without leaving a trace: a read-only SQLite connection to a WAL database creates
 * `-wal` and `-shm` files when they are missing, owned by whoever runs the doctor. Made by root beside
 * a stopped gateway's store, they would stop the service user from opening its own store. So a store
 * without them (its gateway stopped cleanly: nothing writes it) is checked as a copy in a private
 * temporary directory; one with them (a running gateway) is read in place through its WAL, which
 * creates nothing and does not block the gateway.
 */
export function checkStores(
  dataDir: string,
  configured: string | null,
  nowWallMs = Date.now(),
): CheckResult[] {
  const root = resolve(dataDir);
  if (!existsSync(root))
    return [
      warn(
        configured ? `store ${configured}` : "store",
        `the data directory ${dataDir} does not exist`,
        "the package creates /var/lib/greenwave (owned by greenwave); elsewhere give --data-dir",
      ),
    ];
  let names: string[];
  try {
    names = readdirSync(root, { withFileTypes: true })
      .filter(
        (e) =>
          e.isDirectory() &&
          (existsSync(join(root, e.name, STORE_FILE)) || existsSync(join(root, e.name, LATCH_RECORD_FILE))),
      )
      .map((e) => e.name);
  } catch (error) {
    return [
      warn(
        "store",
        `cannot list ${dataDir}: ${(error as Error).message}`,
        "run the doctor as root (sudo greenwave doctor)",
      ),
    ];
  }
  if (configured !== null && !names.includes(configured)) names.push(configured);
  return names.sort().map((name) => checkStore(join(root, name), name, name === configured, nowWallMs));
}

function checkStore(dir: string, name: string, configured: boolean, nowWallMs: number): CheckResult {
  const check = `store ${name}`;
  const database = join(dir, STORE_FILE);
  const record = join(dir, LATCH_RECORD_FILE);
  if (!existsSync(database) && !existsSync(record))
    return pass(check, `no store yet in ${dir}: the gateway creates it at its first start`);
  const findings: Finding[] = [];
  let inspection: LatchInspection;
  try {
    inspection = withReadableCopy(database, (copy) => {
      if (copy !== null) findings.push(...databaseFindings(copy, database));
      return inspectLatch({ record, database: copy ?? database }, nowWallMs);
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EACCES" || code === "EPERM")
      return warn(
        check,
        `cannot read ${database}: permission denied`,
        "run the doctor as root (sudo greenwave doctor)",
      );
    return warn(
      check,
      `cannot check ${database}: ${(error as Error).message}`,
      "check the disk and the file",
    );
  }
  const damagedDb = findings.some((f) => f.status === "FAIL");
  findings.push(...latchFindings(inspection, database, name, damagedDb));
  return summarise(check, dir, findings);
}

/**
 * Runs `use` on a path the store can be opened at without touching the original (see checkStores):
 * the file itself when a gateway's WAL is in place, else a private copy. `copy` is null when there is
 * no database file at all.
 */
function withReadableCopy<T>(database: string, use: (copy: string | null) => T): T {
  if (!existsSync(database)) return use(null);
  if (existsSync(`${database}-wal`) && existsSync(`${database}-shm`)) return use(database);
  const scratch = mkdtempSync(join(tmpdir(), "greenwave-doctor-"));
  try {
    const copy = join(scratch, STORE_FILE);
    copyFileSync(database, copy);
    return use(copy);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function databaseFindings(file: string, shownAs: string): Finding[] {
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (error) {
    return [damaged(shownAs, (error as Error).message)];
  }
  try {
    // quick_check first (it skips the index-to-table cross-check); integrity_check only when it passes.
    for (const pragma of ["quick_check", "integrity_check"] as const) {
      const rows = (db.pragma(`${pragma}(${PROBLEMS_SHOWN + 1})`) as Record<string, string>[]).map((row) =>
        // A row can hold several lines ("*** in database main ***\nPage 5: …"): one line is printed.
        String(Object.values(row)[0] ?? "")
          .replace(/\s+/g, " ")
          .trim(),
      );
      if (rows.length !== 1 || rows[0] !== "ok") {
        const shown = rows.slice(0, PROBLEMS_SHOWN).join("; ");
        return [damaged(shownAs, `${pragma} found: ${shown}${rows.length > PROBLEMS_SHOWN ? "; …" : ""}`)];
      }
    }
    const version = db.pragma("user_version", { simple: true }) as number;
    return [schemaFinding(version)];
  } catch (error) {
    return [damaged(shownAs, (error as Error).message)];
  } finally {
    db.close();
  }
}

function damaged(file: string, problem: string): Finding {
  return {
    status: "FAIL",
    text: `${file} is damaged (${problem})`,
    action: `the gateway may refuse it or fail on it later: stop the gateway, move ${file} aside and restore the newest backup (under the data directory's backups/), or let it start afresh (in flash, store-lost, until reset) after checking the intersection`,
  };
}

function schemaFinding(version: number): Finding {
  const ours = MIGRATIONS.length;
  if (version === 0)
    return { status: "PASS", text: "integrity ok, no schema yet (made at the next start)", action: null };
  if (version === ours)
    return { status: "PASS", text: `integrity ok, schema ${version} (this greenwave's)`, action: null };
  if (version < ours)
    return {
      status: "PASS",
      text: `integrity ok, schema ${version} (this greenwave migrates it to ${ours} at its next start)`,
      action: null,
    };
  return {
    status: "FAIL",
    text: `integrity ok, but schema ${version} is newer than this greenwave's ${ours}`,
    action:
      "the gateway refuses it: run the greenwave release that wrote it, or restore the backup made before its migration",
  };
}

function latchFindings(
  inspection: LatchInspection,
  database: string,
  name: string,
  damagedDb: boolean,
): Finding[] {
  // The findings name the file they read: the copy's path is replaced by the real one.
  const real = (text: string) => text.split(inspection.files.database).join(database);
  const findings: Finding[] = [];
  const record = inspection.record;
  if (record.status === "unreadable")
    findings.push({
      status: "FAIL",
      text: `the latch record ${LATCH_RECORD_FILE} is unreadable (${record.problem})`,
      action:
        "the gateway starts in flash (store-lost) until an operator resets it after checking the intersection",
    });
  else if (record.status === "ok")
    findings.push({
      status: "PASS",
      text: `${LATCH_RECORD_FILE} readable (slot ${record.slot}, seq ${record.seq})`,
      action: null,
    });
  const latch = inspection.latch;
  const reset = `check the intersection and the store, then reset: greenwave fault show --intersection ${name}, greenwave fault reset`;
  if (latch?.kind === "store-lost")
    // Synthesised now from what the copies say (durable-latch.ts): its cause is in the findings below.
    findings.push({
      status: "FAIL",
      text: "the gateway would start in flash with a store-lost fault",
      action: reset,
    });
  else if (latch)
    findings.push({
      status: "WARN",
      text: `fault latched: ${latch.kind}: ${latch.message} (since ${new Date(latch.atWallMs).toISOString()})`,
      action: `the intersection stays in flash until it is reset: ${reset}`,
    });
  else findings.push({ status: "PASS", text: "no fault latched", action: null });
  for (const finding of inspection.findings.map(real))
    // A damaged database is already said, with what to do about it.
    if (!(damagedDb && finding.startsWith(database)))
      findings.push({
        status: "WARN",
        text: finding,
        action: `greenwave fault show --intersection ${name} says what each copy holds`,
      });
  return findings;
}

function summarise(check: string, dir: string, findings: readonly Finding[]): CheckResult {
  const rank = (s: CheckStatus) => (s === "FAIL" ? 2 : s === "WARN" ? 1 : 0);
  const worst = findings.reduce<CheckStatus>((w, f) => (rank(f.status) > rank(w) ? f.status : w), "PASS");
  // The problems first: the line is read from its start.
  const ordered = [...findings].sort((a, b) => rank(b.status) - rank(a.status));
  const detail = `${dir}: ${ordered.map((f) => f.text).join("; ")}`;
  const action = ordered.find((f) => f.action !== null)?.action ?? null;
  if (worst === "FAIL") return fail(check, detail, action);
  if (worst === "WARN") return warn(check, detail, action);
  return pass(check, detail);
}
