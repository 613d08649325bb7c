import { existsSync, statSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { type AuditPage, type AuditPageRequest, readAuditPage } from "./audit-page.js";
import { type HiResQuery, readHiRes, type StoredHiResEvent } from "./hires-records.js";
import { StoreError } from "./errors.js";
import { readKeyring, type SqlAccess } from "./txn-records.js";
import { handBackToOwner } from "./ownership.js";

/**
 * A gateway's audit trail and event log read at the cabinet: a read-only connection that never migrates, counts or
 * writes anything, so that it is safe beside the running gateway (WAL: readers never block its
 * writes, and it never blocks ours for longer than its busy timeout). Run as root, whatever SQLite
 * created beside the store (its shared-memory file) goes back to the store's owner when it closes.
 */
export class StoreReader {
  private constructor(
    private readonly db: Database.Database,
    readonly file: string,
  ) {}

  static open(file: string): StoreReader {
    if (!existsSync(file) || statSync(file).size === 0)
      throw new StoreError(`no gateway store at ${file} (a gateway writes it when it first starts)`);
    let db: Database.Database;
    try {
      db = new Database(file, { readonly: true, fileMustExist: true });
    } catch (error) {
      throw new StoreError(`cannot open the store ${file} read only: ${(error as Error).message}`);
    }
    try {
      db.pragma("busy_timeout = 2000");
      if ((db.pragma("user_version", { simple: true }) as number) === 0)
        throw new StoreError(`the store ${file} has no schema yet: no event was ever written to it`);
    } catch (error) {
      StoreReader.closeDb(db, file);
      if (error instanceof StoreError) throw error;
      throw new StoreError(`cannot read the store ${file}: ${(error as Error).message}`);
    }
    return new StoreReader(db, file);
  }

  page(request: AuditPageRequest): AuditPage {
    try {
      return readAuditPage((sql) => this.db.prepare(sql), request);
    } catch (error) {
      throw new StoreError(`cannot read the events of ${this.file}: ${(error as Error).message}`);
    }
  }

  /** A page of the high-resolution event log; a store from before the log (schema < 7) has none. */
  hiRes(query: HiResQuery): StoredHiResEvent[] {
    try {
      if ((this.db.pragma("user_version", { simple: true }) as number) < 7) return [];
      return readHiRes(this.sql, query);
    } catch (error) {
      if (error instanceof StoreError) throw error;
      throw new StoreError(`cannot read the event log of ${this.file}: ${(error as Error).message}`);
    }
  }

  /** The corridor's keyring in force (core/corridor/keyring.ts), as stored; null: none (or a store from before keyrings, schema < 11). */
  keyring(): unknown {
    try {
      if ((this.db.pragma("user_version", { simple: true }) as number) < 11) return null;
      return readKeyring(this.sql);
    } catch (error) {
      throw new StoreError(`cannot read the keyring of ${this.file}: ${(error as Error).message}`);
    }
  }

  /** The store's records as the record modules read them: read only. */
  private get sql(): SqlAccess {
    return {
      statement: (sql) => this.db.prepare(sql),
      addToCounter: () => {
        throw new StoreError("the store reader never writes");
      },
    };
  }

  close(): void {
    StoreReader.closeDb(this.db, this.file);
  }

  private static closeDb(db: Database.Database, file: string): void {
    if (db.open) db.close();
    handBackToOwner(dirname(file));
  }
}
