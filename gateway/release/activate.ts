import { existsSync } from "node:fs";
import type { ActivateOptions, ActivationResult, Attempt } from "./activation.js";
import { seconds } from "./activation.js";
import { type Backup, backupStores, MAX_BACKUPS, pruneBackups } from "./backups.js";
import { chooseServiceManager } from "./choose-manager.js";
import { ReleaseError } from "./errors.js";
import type { FinalVerdict, GateBounds } from "./health-gate.js";
import { type Links, readLinks, setLinks } from "./links.js";
import { takeLock } from "./lock.js";
import { installPaths } from "./paths.js";
import { checkDowngrade, checkRelease, readStores } from "./preflight.js";
import { recordRelease } from "./release-state.js";
import { pruneReleases } from "./releases.js";
import { rollBack } from "./rollback.js";
import { runHealthGate } from "./service-manager.js";
import { appendReleaseEvent } from "./store-audit.js";
import { findStores } from "./stores.js";

/**
 * `greenwave release activate <version>`: the health-gated switch of `current` (docs/upgrades.md).
 * Checks first (release, arch, downgrade) — a refusal changes nothing; then stop, back up the stores
 * a migration is about to change, switch the links, start, and gate: READY within the bound, then a
 * settle window without N crashes. A release that fails the gate is rolled back (rollback.ts).
 */
export async function activateRelease(version: string, options: ActivateOptions): Promise<ActivationResult> {
  const paths = installPaths(options.root);
  const now = options.nowWallMs ?? Date.now;
  let links: Links = { current: null, previous: null };
  let unlock: (() => void) | null = null;
  try {
    unlock = takeLock(paths.lockFile);
    links = readLinks(paths);
    const { manifest } = checkRelease(paths, version, options.unameM);
    const stores = readStores(paths);
    checkDowngrade(paths, manifest, stores);
    if (links.current === version)
      return {
        outcome: "unchanged",
        version,
        message: `${version} is already the active release (${paths.current}): nothing to do`,
        exitCode: 0,
      };
    const { manager, why } = chooseServiceManager(options.serviceManager, paths, options.direct);
    const gate = manager ? await manager.shouldGate() : { gate: false, why };
    const gated = manager && gate.gate ? manager : null;
    options.report(
      `activating ${version} (store schema ${manifest.schemaVersion}) in place of ${links.current ?? "no release"}; ${gated ? `health gate by ${gated.name}: ${describeBounds(options.bounds)}` : `no health gate: ${gate.why}`}`,
    );

    if (gated) {
      // The direct manager has nothing running to stop: it only ever stops what it started.
      if (gated.name === "systemd") options.report("stopping greenwave (systemctl stop greenwave)");
      await gated.stop();
    }
    const toMigrate = stores.filter(
      (s) => s.schemaVersion !== null && s.schemaVersion < manifest.schemaVersion,
    );
    let backup: Backup | null = null;
    if (toMigrate.length > 0) {
      try {
        backup = await backupStores(
          paths,
          stores,
          { from: links.current, to: version, toSchemaVersion: manifest.schemaVersion },
          now(),
        );
      } catch (error) {
        await gated?.undoStop();
        throw error;
      }
      const migrations = toMigrate
        .map((s) => `${s.id} ${s.schemaVersion} → ${manifest.schemaVersion}`)
        .join(", ");
      options.report(`${version} will migrate store ${migrations}: backed up to ${backup.dir}`);
      for (const removed of pruneBackups(paths, MAX_BACKUPS, [backup.dir]))
        options.report(`removed the old backup ${removed} (at most ${MAX_BACKUPS} are kept)`);
    }

    const switched: Links = { current: version, previous: links.current ?? links.previous };
    setLinks(paths, switched);
    options.report(
      `current → releases/${version}${switched.previous ? `, previous → releases/${switched.previous}` : ""}`,
    );
    if (!gated)
      return activated({ paths, version, before: links, switched, options }, `switched only: ${gate.why}`);

    const attempt: Attempt = {
      paths,
      manifest,
      before: links,
      switched,
      stores,
      backup,
      manager: gated,
      options,
    };
    options.report(`starting ${version}`);
    // A gate that cannot even run (the notify socket, systemctl) has not been passed either.
    const verdict = await runHealthGate(gated, options.bounds, options.signal).catch(
      (error: unknown): FinalVerdict => ({
        outcome: "failed",
        why: `its health gate could not run: ${(error as Error).message}`,
        crashes: 0,
      }),
    );
    if (verdict.outcome === "failed") return await rollBack(attempt, verdict.why);
    await gated.detach();
    const crashes =
      verdict.crashes === 0
        ? "no crash"
        : `${verdict.crashes} crash(es), fewer than ${options.bounds.maxCrashes}`;
    const trial = gated.name === "direct" ? "; trial over: the gateway it started is stopped again" : "";
    return activated(
      { paths, version, before: links, switched, options },
      `READY after ${seconds(verdict.readyAfterMs)}, ${crashes} in the ${seconds(options.bounds.settleMs)} settle window${trial}`,
    );
  } catch (error) {
    if (!(error instanceof ReleaseError)) throw error;
    // Refused before anything was switched: recorded when a gateway is installed here at all.
    if (existsSync(paths.data) && unlock)
      recordRelease(
        options.root,
        { active: links.current, previous: links.previous },
        { from: links.current, to: version, outcome: "refused", why: error.message, atWallMs: now() },
      );
    return { outcome: "refused", version, message: error.message, exitCode: 1 };
  } finally {
    unlock?.();
  }
}

function describeBounds(bounds: GateBounds): string {
  return `READY within ${seconds(bounds.readyWithinMs)}, then ${seconds(bounds.settleMs)} with fewer than ${bounds.maxCrashes} crashes`;
}

function activated(
  done: {
    paths: Attempt["paths"];
    version: string;
    before: Links;
    switched: Links;
    options: ActivateOptions;
  },
  why: string,
): ActivationResult {
  const { paths, version, before, switched, options } = done;
  const atWallMs = (options.nowWallMs ?? Date.now)();
  recordRelease(
    options.root,
    { active: switched.current, previous: switched.previous },
    { from: before.current, to: version, outcome: "activated", why, atWallMs },
  );
  const lines = [`${version} is active (${why})`];
  for (const store of findStores(paths)) {
    if (!existsSync(store.db)) continue;
    const problems = appendReleaseEvent(store, {
      type: "release-activated",
      actor: options.actor,
      atWallMs,
      detail: { from: before.current, to: version, why, trigger: "release activate" },
    });
    for (const problem of problems) lines.push(`note: ${problem}`);
  }
  for (const removed of pruneReleases(paths, switched))
    lines.push(`removed the old release ${removed} (current, previous and one more are kept)`);
  return { outcome: "activated", version, message: lines.join("\n"), exitCode: 0 };
}
