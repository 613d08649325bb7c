import { existsSync } from "node:fs";
import { join } from "node:path";
import type { ActivationResult, Attempt } from "./activation.js";
import { seconds } from "./activation.js";
import type { FinalVerdict } from "./health-gate.js";
import { setLinks } from "./links.js";
import { recordRelease } from "./release-state.js";
import { moveCreatedStoreAside, restoreStore, type StoreRollback } from "./rollback-store.js";
import { runHealthGate } from "./service-manager.js";
import { appendReleaseEvent, type ReleaseAuditEvent } from "./store-audit.js";
import { findStores } from "./stores.js";

/**
 * Undoes an activation whose release failed its health gate: stop it; put every store back as it was
 * before (restored from the backup when the release was to migrate it, with the latch and the
 * attempt's events carried forward: rollback-store.ts); point `current` and `previous` back; start the
 * previous release and wait for its READY. Every step runs even when one before it had a problem: each
 * problem is reported, none stops the rollback. Always exit 1: the release asked for is not active.
 */
export async function rollBack(attempt: Attempt, why: string): Promise<ActivationResult> {
  const { paths, manifest, before, backup, manager, options } = attempt;
  const version = manifest.version;
  const target = before.current;
  const report = options.report;
  const now = options.nowWallMs ?? Date.now;
  report(`${version} FAILED its health gate: ${why}`);
  const diagnostics = manager.diagnostics();
  report(`stopping ${version}`);
  await manager.stop();

  const atWallMs = now();
  const event: ReleaseAuditEvent = {
    type: "release-rolled-back",
    actor: options.actor,
    atWallMs,
    detail: { from: target, to: version, why, backup: backup?.dir ?? null, trigger: "health gate" },
  };
  const failedDir = backup
    ? join(backup.dir, `failed-${version}`)
    : join(paths.backups, `failed-${version}-${new Date(atWallMs).toISOString().replace(/[-:.]/g, "")}`);
  const outcomes: StoreRollback[] = [];
  const lines: string[] = [];
  for (const store of findStores(paths)) {
    const previously = attempt.stores.find((s) => s.id === store.id);
    const backedUp = backup?.manifest.stores.find((s) => s.id === store.id && s.schemaVersion !== null);
    try {
      if (backup && backedUp)
        outcomes.push(restoreStore(store, join(backup.dir, store.id, "gateway.db"), failedDir, event, now()));
      else if (!previously) outcomes.push(moveCreatedStoreAside(store, failedDir, now()));
      else {
        const problems = existsSync(store.db) ? appendReleaseEvent(store, event) : [];
        lines.push(
          `store ${store.id}: kept as it is (${version} did not migrate it)${problems.map((p) => `; note: ${p}`).join("")}`,
        );
      }
    } catch (error) {
      lines.push(
        `store ${store.id}: the rollback of the store FAILED: ${(error as Error).message} — check it with greenwave doctor before the gateway runs`,
      );
    }
  }
  for (const o of outcomes) lines.push(...describeStore(o, backup?.dir ?? null));

  let restarted: string;
  if (target === null) {
    restarted = `there is no previous release to go back to: ${version} stays current, and greenwave is stopped`;
  } else {
    setLinks(paths, before);
    report(`current → releases/${target} again; starting ${target}`);
    const verdict = await runHealthGate(manager, { ...options.bounds, settleMs: 0 }).catch(
      (error: unknown): FinalVerdict => ({ outcome: "failed", why: (error as Error).message, crashes: 0 }),
    );
    restarted =
      verdict.outcome === "passed"
        ? `${target} is running again (READY after ${seconds(verdict.readyAfterMs)})`
        : `${target} did NOT come back either: ${verdict.why}. The intersection is in the I/O modules' safe state: check it now (greenwave doctor)`;
    await manager.detach();
    if (manager.name === "direct") restarted += "; trial over: the gateway it started is stopped again";
  }

  const links = target === null ? attempt.switched : before;
  recordRelease(
    options.root,
    { active: links.current, previous: links.previous },
    { from: target, to: version, outcome: "rolled-back", why, atWallMs },
  );
  const message = [
    `release ${version} was ROLLED BACK${target ? ` to ${target}` : ""}: ${why}.`,
    ...lines.map((l) => `  ${l}`),
    `  ${restarted}.`,
    ...diagnostics.map((l) => `  ${l}`),
    `  What to do: find why ${version} failed (above, or ${manager.name === "systemd" ? "journalctl -u greenwave" : "its output"}), fix it, then install ${version} again (greenwave upgrade FILE; after a dpkg install, dpkg --configure -a). ${paths.stateFile} and each store's audit trail record this rollback.`,
  ];
  return { outcome: "rolled-back", version, message: message.join("\n"), exitCode: 1 };
}

function describeStore(o: StoreRollback, backupDir: string | null): string[] {
  const lines: string[] = [];
  if (o.action === "restored")
    lines.push(
      `store ${o.id}: restored from ${backupDir}/${o.id}/gateway.db, as it was before the migration${o.failedCopy ? `; the failed release's store is kept in ${o.failedCopy}` : ""}${o.eventsCarried > 0 ? `; ${o.eventsCarried} audit event${o.eventsCarried === 1 ? "" : "s"} of the attempt carried over` : ""}`,
    );
  else
    lines.push(
      `store ${o.id}: created by the failed release, moved to ${o.failedCopy ?? "(nothing to move)"} so that the previous release starts on its own`,
    );
  if (o.latch)
    lines.push(
      `store ${o.id}: LATCHED FAULT ${o.latchedDuringAttempt ? "from the attempt, carried over" : "kept"}: ${o.latch.kind}: ${o.latch.message} — the intersection stays in flash until an operator checks it and resets the fault (greenwave fault reset)`,
    );
  for (const problem of o.problems) lines.push(`store ${o.id}: PROBLEM: ${problem}`);
  return lines;
}
