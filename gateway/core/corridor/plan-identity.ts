import { canonicalJson } from "../canonical-json.js";
import type { IntersectionPlan } from "../model.js";
import type { PrepareVerdict } from "./participant.js";

/**
 * A plan is identified by its id, its version and the digest of its content (config/plan-digest.ts:
 * sha256 of the plan file as its schema reads it, canonicalised). One (id, version) stands for one
 * content, corridor-wide and for good: a participant that already holds a plan under that id and
 * version refuses any other content for it, so that "plan midday v3" names the same lamps everywhere,
 * in the status, the audit trail and after a restart. Pure: the participant shell decides with it, in
 * the gateway and in the simulator alike.
 */

/** How many hex characters of a digest the status, the logs and the messages show. */
export const SHORT_DIGEST_LENGTH = 12;

export function shortDigest(digest: string): string {
  return digest.slice(0, SHORT_DIGEST_LENGTH);
}

/** A plan's digest, if it has one (a stored body is JSON read back: trust its shape no further). */
function digestOf(plan: IntersectionPlan): string | undefined {
  return typeof plan.digest === "string" ? plan.digest : undefined;
}

/** A compiled plan without its digest: what the lamps run, for plans stored before digests. */
function compiledForm(plan: IntersectionPlan): string {
  const { digest: _digest, ...rest } = plan;
  return canonicalJson(rest);
}

/**
 * Do two compiled plans of one (id, version) hold the same content? By their digests when both have
 * one; otherwise (a plan stored before digests existed) by their compiled form for this intersection,
 * which is all such a store kept of it.
 */
export function sameContent(known: IntersectionPlan, offered: IntersectionPlan): boolean {
  const [a, b] = [digestOf(known), digestOf(offered)];
  if (a !== undefined && b !== undefined) return a === b;
  return compiledForm(known) === compiledForm(offered);
}

export interface OfferedPlan {
  readonly planId: string;
  readonly version: number;
  /** The digest the coordinator named in its PREPARE (absent from an older coordinator). */
  readonly claimedDigest: string | null;
  /** The plan as this participant compiled it from the PREPARE's content, with its own digest. */
  readonly plan: IntersectionPlan;
}

/**
 * The identity rule for a PREPARE's plan: the content is what the coordinator says it is, and is the
 * content this participant already holds under that id and version, if it holds one (`known`: the
 * stored compiled plan, null when the version is new here). The same content again is fine.
 */
export function checkPlanIdentity(offer: OfferedPlan, known: IntersectionPlan | null): PrepareVerdict {
  const { planId, version, claimedDigest, plan } = offer;
  const offered = digestOf(plan);
  if (claimedDigest !== null && offered !== undefined && claimedDigest !== offered)
    return {
      ok: false,
      reason: `the PREPARE names plan ${planId} version ${version} with digest ${shortDigest(claimedDigest)}…, but its content digests to ${shortDigest(offered)}… here: the coordinator and this gateway read the plan differently (are they on different greenwave releases?)`,
    };
  if (known === null || sameContent(known, plan)) return { ok: true };
  const stored = digestOf(known);
  const which =
    stored !== undefined
      ? `digest ${shortDigest(stored)}…${offered !== undefined ? `, this push's ${shortDigest(offered)}…` : ""}`
      : "stored before content digests, and its compiled form differs";
  return {
    ok: false,
    reason: `plan ${planId} version ${version} is already known here with different content (${which}): raise the version to push changed content`,
  };
}
