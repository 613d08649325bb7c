import { createHash } from "node:crypto";
import type { DetectorWiring, ModuleLayout } from "../../devices/io-map.js";
import { canonicalJson } from "../core/canonical-json.js";
import { shortDigest } from "../core/corridor/plan-identity.js";
import type { Intersection, IntersectionPlan } from "../core/model.js";
import type { PreviousRun } from "../core/sequencer.js";
import type { RunRecord } from "../store/store.js";

/**
 * What a restart may believe about the lamps the last run left: the shell's proof for the core's
 * start-up decision (core/start-up.ts). The store keeps one record per intersection (store/run-record.ts):
 * the configuration's digest, the plan in force, and whether the run ended with a clean stop. Only the
 * same configuration and the same plan count; anything else is `unknown`, the full start-up.
 */

/** What identifies what a run drives: the configuration (wiring included) and the plan in force. */
export interface RunIdentity {
  readonly configDigest: string;
  readonly planId: string;
  readonly planVersion: number;
  readonly planDigest: string;
}

const sha256 = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");

/**
 * The digest of an intersection configuration as the gateway loaded it: the intersection (groups,
 * timings, conflicts, start-up, flash, monitor windows, phases, detectors) with its modules (profiles,
 * links, unit ids, windows, channels) and detector wiring, canonicalised (RFC 8785) and hashed. Any
 * change the lamps could notice changes it; so does a renamed intersection (harmless: a full start-up).
 */
export function configDigest(
  intersection: Intersection,
  modules: readonly ModuleLayout[],
  detectorWiring: readonly DetectorWiring[],
): string {
  return sha256(canonicalJson({ intersection, modules, detectorWiring }));
}

/** A plan's content digest: the one it was compiled with, else (an old stored plan) its compiled form's. */
export function planDigestOf(plan: IntersectionPlan): string {
  if (typeof plan.digest === "string") return plan.digest;
  const { digest: _digest, ...compiled } = plan;
  return `compiled:${sha256(canonicalJson(compiled))}`;
}

export function runIdentity(
  intersection: Intersection,
  modules: readonly ModuleLayout[],
  detectorWiring: readonly DetectorWiring[],
  plan: IntersectionPlan,
): RunIdentity {
  return {
    configDigest: configDigest(intersection, modules, detectorWiring),
    planId: plan.planId,
    planVersion: plan.version,
    planDigest: planDigestOf(plan),
  };
}

export interface PreviousRunJudgement {
  readonly previous: PreviousRun;
  /** Why, in words for the log and the audit trail. */
  readonly why: string;
}

const planName = (id: string, version: number, digest: string) =>
  `${id} v${version} (${shortDigest(digest.replace(/^compiled:/, ""))})`;

/**
 * How the last run ended, as far as the store proves it, for a run about to start as `now`:
 * no record, another configuration or another plan → `unknown`; a clean stop recorded → `stopped-clean`;
 * a run that began and never recorded its clean stop (a crash, a kill, a power cut) → `ended-abruptly`.
 */
export function judgePreviousRun(record: RunRecord | null, now: RunIdentity): PreviousRunJudgement {
  if (record === null) return { previous: "unknown", why: "no record of a previous run on this store" };
  if (record.configDigest !== now.configDigest)
    return {
      previous: "unknown",
      why: `the intersection configuration changed since the last run (digest ${shortDigest(record.configDigest)}, now ${shortDigest(now.configDigest)})`,
    };
  if (
    record.planId !== now.planId ||
    record.planVersion !== now.planVersion ||
    record.planDigest !== now.planDigest
  )
    return {
      previous: "unknown",
      why: `the last run had plan ${planName(record.planId, record.planVersion, record.planDigest)} in force, this one starts with ${planName(now.planId, now.planVersion, now.planDigest)}`,
    };
  if (record.cleanStopAtWallMs !== null)
    return {
      previous: "stopped-clean",
      why: `the last run stopped cleanly at ${new Date(record.cleanStopAtWallMs).toISOString()} (all-red, then the modules' safe state), same configuration and plan`,
    };
  return {
    previous: "ended-abruptly",
    why: `the last run (started ${new Date(record.startedAtWallMs).toISOString()}) did not stop cleanly (a crash, a kill or a power cut), same configuration and plan`,
  };
}

/** The record of a run that has begun and not yet stopped cleanly (what a crash leaves). */
export function runStarted(now: RunIdentity, atWallMs: number): RunRecord {
  return { ...now, startedAtWallMs: atWallMs, cleanStopAtWallMs: null };
}
