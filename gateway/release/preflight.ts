import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { matchingBackup } from "./backups.js";
import { handBackToOwner } from "../store/ownership.js";
import { ReleaseError } from "./errors.js";
import { checkArch, checkVersion, type ReleaseManifest, readManifest } from "./manifest.js";
import { type InstallPaths, releaseDir } from "./paths.js";
import { findStores, readStoreSchema, type StoreFiles, type StoreSchema } from "./stores.js";

/** What is checked before anything is stopped or switched: every refusal comes from here. */

export interface StoreState extends StoreFiles, StoreSchema {}

/** The installed release `version`: its directory, a valid release.json of that version, this machine's arch. */
export function checkRelease(
  paths: InstallPaths,
  version: string,
  unameM?: string,
): { dir: string; manifest: ReleaseManifest } {
  checkVersion(version, "release activate");
  const dir = releaseDir(paths, version);
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new ReleaseError(
      `there is no release ${version} in ${paths.releases}: install it first (greenwave upgrade FILE, or dpkg -i the package)`,
    );
  const manifest = readManifest(dir);
  if (manifest.version !== version)
    throw new ReleaseError(
      `${join(dir, "release.json")} says version ${manifest.version}, but it is installed as ${version}: install the release again`,
    );
  checkArch(manifest, `release ${version}`, unameM);
  return { dir, manifest };
}

export function readStores(paths: InstallPaths): StoreState[] {
  return findStores(paths).map((store) => {
    const schema = readStoreSchema(store.db);
    // A read-only SQLite connection may leave a -shm behind: it must stay the gateway's.
    handBackToOwner(store.dir);
    return { ...store, ...schema };
  });
}

/**
 * Refuses a release that cannot open a store: one whose schema is newer than the release knows (a
 * downgrade past a migration). When a backup from before that migration exists, says which to restore.
 */
export function checkDowngrade(
  paths: InstallPaths,
  manifest: ReleaseManifest,
  stores: readonly StoreState[],
): void {
  const newer = stores.filter((s) => s.schemaVersion !== null && s.schemaVersion > manifest.schemaVersion);
  if (newer.length === 0) return;
  const which = newer.map((s) => `${s.db} has schema ${s.schemaVersion}`).join(", ");
  const backup = matchingBackup(paths, manifest.schemaVersion);
  const advice = backup
    ? `A backup from before that migration exists: ${backup.dir} (taken ${new Date(backup.manifest.createdAtWallMs).toISOString()} before ${backup.manifest.to}). To go back to ${manifest.version}: stop greenwave, copy ${join(backup.dir, "<intersection>", "gateway.db")} over ${join(paths.data, "<intersection>", "gateway.db")} (remove its -wal and -shm; keep latch.rec, it holds the latched fault), then activate ${manifest.version} again. Everything the store recorded since that backup is lost.`
    : `No backup from before that migration is left in ${paths.backups}: ${manifest.version} cannot run on these stores; install a release of schema ${newer[0]?.schemaVersion} or newer.`;
  throw new ReleaseError(
    `release ${manifest.version} knows store schema ${manifest.schemaVersion}, but ${which}: it would refuse to open ${newer.length === 1 ? "it" : "them"}. ${advice}`,
  );
}
