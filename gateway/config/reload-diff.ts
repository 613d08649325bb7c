import { createHash } from "node:crypto";
import type { DetectorWiring, Link, ModuleLayout } from "../../devices/io-map.js";
import { canonicalJson } from "../core/canonical-json.js";
import type { Intersection, SignalGroup } from "../core/model.js";
import { sameTimeReference } from "../core/time/time-reference.js";
import { formatSeconds } from "../core/units.js";
import type { IntersectionSetup } from "./load.js";

/**
 * What a reloaded intersection file (SIGHUP) changes against the configuration a gateway runs, and
 * whether a running gateway can take it. Pure: both configurations are already loaded and checked.
 *
 * A running gateway can take, at a cycle boundary with the plan in force recompiled, anything the
 * controller reads afresh: group timings, conflicts, names, phase numbers, start-up and flash settings,
 * monitor windows, detector parameters. It cannot take what was opened or laid out at start — the
 * signal groups (ids, order, kinds: every state and every plan is indexed by them), the I/O modules
 * (links, profiles, unit ids, channels, timeouts, watchdogs), the detectors' inputs — nor another
 * intersection, corridor or time reference (the corridor's grid and its peers): those need a restart.
 */
export type ReloadVerdict =
  /** Nothing the gateway runs by differs (comments, layout, the traffic simulation's block, initialPlan). */
  | { readonly kind: "unchanged"; readonly digest: string }
  /** Not takeable while running: each reason says what changed; a restart takes it. */
  | { readonly kind: "refused"; readonly reasons: readonly string[] }
  /** Takeable at a cycle boundary: what changed, one line each. */
  | { readonly kind: "changed"; readonly changes: readonly string[]; readonly digest: string };

/** The part of a setup a running gateway works from: the same digest, the same running configuration. */
export function runningConfiguration(setup: IntersectionSetup) {
  return {
    intersection: setup.intersection.intersection,
    modules: setup.intersection.modules,
    detectorWiring: setup.intersection.detectorWiring,
    corridor: setup.corridor.raw.id,
    timeReference: setup.corridor.timeReference,
  };
}

/** sha256 (hex) of the running configuration's canonical JSON: equal digests, nothing to reload. */
export function runningConfigurationDigest(setup: IntersectionSetup): string {
  return createHash("sha256").update(canonicalJson(runningConfiguration(setup))).digest("hex");
}

export function reloadVerdict(running: IntersectionSetup, reloaded: IntersectionSetup): ReloadVerdict {
  const digest = runningConfigurationDigest(reloaded);
  if (digest === runningConfigurationDigest(running)) return { kind: "unchanged", digest };
  const reasons = refusals(running, reloaded);
  if (reasons.length > 0) return { kind: "refused", reasons };
  const changes = takeableChanges(running.intersection.intersection, reloaded.intersection.intersection);
  // Everything else in the running configuration is refused above, so a digest change shows up here;
  // the catch-all keeps the verdict honest should a new field be added to the model and not described.
  return { kind: "changed", changes: changes.length > 0 ? changes : ["other settings"], digest };
}

/** Why a running gateway cannot take the reloaded file (empty: it can). */
export function refusals(running: IntersectionSetup, reloaded: IntersectionSetup): string[] {
  const was = running.intersection.intersection;
  const now = reloaded.intersection.intersection;
  if (was.id !== now.id)
    return [`the file is now for intersection ${now.id}, but this gateway runs ${was.id}`];
  const reasons: string[] = [];
  if (running.corridor.raw.id !== reloaded.corridor.raw.id)
    reasons.push(`the corridor changed from ${running.corridor.raw.id} to ${reloaded.corridor.raw.id}`);
  else if (!sameTimeReference(running.corridor.timeReference, reloaded.corridor.timeReference))
    reasons.push(
      `the corridor's time reference changed (daily sync or time zone): every plan's cycle grid moves with it`,
    );
  reasons.push(...groupRefusals(was.groups, now.groups));
  if (reasons.length > 0) return reasons;
  reasons.push(...moduleRefusals(running.intersection.modules, reloaded.intersection.modules, now));
  reasons.push(...detectorRefusals(running, reloaded));
  return reasons;
}

function groupRefusals(was: readonly SignalGroup[], now: readonly SignalGroup[]): string[] {
  const describe = (groups: readonly SignalGroup[]) => groups.map((g) => `${g.id} (${g.kind})`).join(", ");
  const same =
    was.length === now.length && was.every((g, i) => g.id === now[i]?.id && g.kind === now[i]?.kind);
  return same ? [] : [`the signal groups changed: were ${describe(was)}, now ${describe(now)}`];
}

function linkText(link: Link): string {
  return link.kind === "tcp" ? `tcp ${link.host}:${link.port}` : `serial ${link.path}`;
}

function moduleRefusals(
  was: readonly ModuleLayout[],
  now: readonly ModuleLayout[],
  intersection: Intersection,
): string[] {
  const ids = (modules: readonly ModuleLayout[]) => modules.map((m) => m.deviceId).join(", ") || "none";
  if (ids(was) !== ids(now)) return [`the I/O modules changed: were ${ids(was)}, now ${ids(now)}`];
  const reasons: string[] = [];
  was.forEach((before, i) => {
    const after = now[i] as ModuleLayout;
    const device = `device ${before.deviceId}`;
    if (canonicalJson(before.link) !== canonicalJson(after.link))
      reasons.push(`${device}: its link changed from ${linkText(before.link)} to ${linkText(after.link)}`);
    if (canonicalJson(before.profile) !== canonicalJson(after.profile))
      reasons.push(
        `${device}: its profile changed (${before.profile.id}${before.profile.id === after.profile.id ? ", its content" : ` → ${after.profile.id}`})`,
      );
    if (before.unitId !== after.unitId)
      reasons.push(`${device}: its unit id changed from ${before.unitId} to ${after.unitId}`);
    const channels = changedChannels(before, after, intersection);
    if (channels.length > 0) reasons.push(`${device}: its lamp wiring changed (${channels.join("; ")})`);
    for (const key of ["timeoutMs", "retries", "faultWindowMs", "watchdogMs"] as const)
      if (before[key] !== after[key]) reasons.push(`${device}: ${key} changed from ${before[key]} to ${after[key]}`);
  });
  return reasons;
}

/** "channel 2: M green → M yellow", for each output channel whose use changed. */
function changedChannels(before: ModuleLayout, after: ModuleLayout, intersection: Intersection): string[] {
  const use = (layout: ModuleLayout, n: number) => {
    const u = layout.channels[n];
    return u ? `${intersection.groups[u.group]?.id ?? `group ${u.group}`} ${u.lamp}` : "unused";
  };
  const out: string[] = [];
  const count = Math.max(before.channels.length, after.channels.length);
  for (let n = 0; n < count; n++) {
    const a = use(before, n);
    const b = use(after, n);
    if (a !== b) out.push(`channel ${n}: ${a} → ${b}`);
  }
  return out;
}

function detectorRefusals(running: IntersectionSetup, reloaded: IntersectionSetup): string[] {
  const describe = (setup: IntersectionSetup) => {
    const detectors = setup.intersection.intersection.detectors ?? [];
    const wiring = setup.intersection.detectorWiring;
    return detectors.map((d, i) => {
      const w: DetectorWiring | undefined = wiring[i];
      return `${d.id} (${d.kind}, ${w ? `${w.deviceId} input ${w.input}` : "not wired"})`;
    });
  };
  const was = describe(running);
  const now = describe(reloaded);
  if (was.join(", ") === now.join(", ")) return [];
  return [
    `the detectors or their inputs changed: were ${was.join(", ") || "none"}, now ${now.join(", ") || "none"}`,
  ];
}

/** What a running gateway takes at the boundary, one line per change ("group M: yellow 3 s → 4 s"). */
export function takeableChanges(was: Intersection, now: Intersection): string[] {
  const changes: string[] = [];
  if (was.name !== now.name) changes.push(`name: ${JSON.stringify(was.name)} → ${JSON.stringify(now.name)}`);
  was.groups.forEach((before, i) => {
    const after = now.groups[i] as SignalGroup;
    const vehicle = before.kind === "vehicle";
    const timings: [string, number, number][] = [
      [vehicle ? "minimum green" : "walk", before.minGoMs, after.minGoMs],
      [vehicle ? "yellow" : "pedestrian clearance", before.clearanceMs, after.clearanceMs],
      ["red clearance", before.redClearanceMs, after.redClearanceMs],
    ];
    for (const [what, a, b] of timings)
      if (a !== b) changes.push(`group ${before.id}: ${what} ${formatSeconds(a)} → ${formatSeconds(b)}`);
    if (before.scheduledFlash !== after.scheduledFlash)
      changes.push(`group ${before.id}: flashes ${before.scheduledFlash} → ${after.scheduledFlash} in scheduled flash`);
  });
  const pairs = (i: Intersection) =>
    i.groups.flatMap((g, a) =>
      i.groups.slice(a + 1).flatMap((h, k) => (i.permissive[a]?.[a + 1 + k] ? [`${g.id}+${h.id}`] : [])),
    );
  const before = new Set(pairs(was));
  const after = new Set(pairs(now));
  const added = [...after].filter((p) => !before.has(p));
  const removed = [...before].filter((p) => !after.has(p));
  if (added.length > 0) changes.push(`permissive now: ${added.join(", ")}`);
  if (removed.length > 0) changes.push(`no longer permissive: ${removed.join(", ")}`);
  const ms: [string, number, number][] = [
    ["start-up flash", was.startupFlashMs, now.startupFlashMs],
    ["start-up all-red", was.startupAllRedMs, now.startupAllRedMs],
    ["flash period", was.flashPeriodMs, now.flashPeriodMs],
    ["monitor conflict window", was.monitor.conflictMs, now.monitor.conflictMs],
    ["monitor red-fail window", was.monitor.redFailMs, now.monitor.redFailMs],
    ["monitor mismatch window", was.monitor.mismatchMs, now.monitor.mismatchMs],
  ];
  for (const [what, a, b] of ms) if (a !== b) changes.push(`${what} ${formatSeconds(a)} → ${formatSeconds(b)}`);
  const phases = (i: Intersection) => i.groups.map((_, k) => i.phases?.[k] ?? k + 1).join(",");
  if (phases(was) !== phases(now)) changes.push(`phase numbers ${phases(was)} → ${phases(now)}`);
  if (canonicalJson(was.detectors ?? []) !== canonicalJson(now.detectors ?? []))
    changes.push("detector settings (calls, extensions, delay, carry-over, diagnostics)");
  return changes;
}
