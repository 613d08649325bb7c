import { chownSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

/**
 * A technician at the cabinet runs `greenwave fault show` (or the gateway itself) as root on a store
 * that belongs to the service user: SQLite then creates the WAL and shared-memory files as root, and
 * the service can no longer write its own store (SQLITE_READONLY) after its next start. So whatever
 * root created in a store directory that is not root's goes back to the directory's owner.
 */
export function handBackToOwner(dir: string): void {
  if (process.getuid?.() !== 0) return;
  let owner: { uid: number; gid: number };
  try {
    owner = statSync(dir);
  } catch {
    return;
  }
  if (owner.uid === 0) return;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const file = join(dir, name);
    try {
      const st = statSync(file);
      if (st.isFile() && (st.uid !== owner.uid || st.gid !== owner.gid))
        chownSync(file, owner.uid, owner.gid);
    } catch {
      // gone meanwhile (SQLite removes its WAL at the last close): nothing to give back
    }
  }
}
