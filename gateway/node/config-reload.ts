import { ConfigError, displayPath, formatIssue } from "../config/errors.js";
import { type IntersectionSetup, loadIntersectionSetup } from "../config/load.js";
import { recompilePlan } from "../config/recompile-plan.js";
import { reloadVerdict } from "../config/reload-diff.js";
import { checkTickMs } from "../config/tick.js";
import { canonicalJson } from "../core/canonical-json.js";
import type { Intersection, IntersectionPlan } from "../core/model.js";
import { isCompiledSchedule } from "../core/schedule/committed-change.js";
import type { CompiledSchedule } from "../core/schedule/schedule-runner.js";
import { planChangeRefusal, stopBoundMs } from "../core/sequencer.js";
import { formatSeconds } from "../core/units.js";
import type { PendingPlan, SequencerState } from "../core/sequencer-types.js";
import type { Logger } from "../shell/log.js";
import { isStoreFailure } from "../store/errors.js";
import type { GatewayParts } from "./gateway-parts.js";

/**
 * SIGHUP: the gateway reads its intersection file again (with its corridor and initial plan), checks
 * it exactly as at start, and either refuses it with the reasons — the running configuration stays —
 * or takes it through the same safe transition as a plan change: the plan in force, compiled again for
 * the new file, is scheduled for now with the new intersection, and the controller swaps both at its
 * next cycle boundary (every interval in progress ends under the timings it began with). Plans pushed
 * from then on compile against the new file (`setupInForce`). What the running gateway cannot take
 * (groups, modules, detector inputs: config/reload-diff.ts) needs a restart, which no longer flashes
 * the intersection when the last stop was clean.
 */

/** The configuration each running gateway took last, by the setup it started with. */
const reloadedSetups = new WeakMap<IntersectionSetup, IntersectionSetup>();

/**
 * The configuration a gateway checks and compiles incoming plans and schedules against: the one it
 * started with (`started`, its GatewayParts.setup) or, after a SIGHUP reload, the reloaded one.
 */
export function setupInForce(started: IntersectionSetup): IntersectionSetup {
  return reloadedSetups.get(started) ?? started;
}

export type ReloadOutcome =
  | { readonly outcome: "unchanged" }
  | { readonly outcome: "refused"; readonly reasons: readonly string[] }
  | {
      readonly outcome: "reloaded";
      readonly changes: readonly string[];
      readonly plan: { readonly id: string; readonly version: number };
    };

const RESTART_HINT =
  "restart the gateway to take it (systemctl restart greenwave: after a clean stop it starts without the start-up flash)";

/** A reload taken and waiting for its cycle boundary. */
interface Awaiting {
  readonly intersection: Intersection;
  readonly plan: IntersectionPlan;
  /** The configuration before it, put back should the change be dropped before its boundary. */
  readonly previous: IntersectionSetup | undefined;
}

/**
 * One gateway's reload of its intersection file. Register `feature` with the gateway
 * (GatewayNodeOptions.features), and call `reload()` on SIGHUP.
 */
export class ConfigReload {
  private parts: GatewayParts | null = null;
  private stopping = false;
  private awaiting: Awaiting | null = null;
  private lastRejection: string | null = null;

  constructor(
    private readonly file: string,
    private readonly log: Logger,
  ) {}

  readonly feature = (parts: GatewayParts): void => {
    this.parts = parts;
    parts.bus.on("stopping", () => {
      this.stopping = true;
    });
    parts.bus.on("signal", (event) => {
      if (event.type === "plan-rejected") this.lastRejection = event.reason;
    });
    parts.bus.on("tick", () => this.watchBoundary(parts));
  };

  reload(): ReloadOutcome {
    const parts = this.parts;
    const file = displayPath(this.file);
    if (!parts) {
      this.log.warn(
        `SIGHUP before the gateway has started: ${file} not reloaded; send SIGHUP again once it runs`,
      );
      return { outcome: "refused", reasons: ["the gateway has not started yet"] };
    }
    this.log.info({ file: this.file }, `SIGHUP: reloading ${file}`);
    try {
      return this.reloadWith(parts);
    } catch (error) {
      // A running intersection is never taken down by a reload: a bug in the checks refuses it.
      const reason = `internal error while reloading (please report): ${(error as Error).message}`;
      this.log.error({ error: (error as Error).stack ?? String(error) }, reason);
      return this.refuse(parts, [reason]);
    }
  }

  private reloadWith(parts: GatewayParts): ReloadOutcome {
    const { runner, clock } = parts;
    if (this.stopping) return this.refuse(parts, ["the gateway is stopping"]);
    let loaded: IntersectionSetup;
    try {
      loaded = loadIntersectionSetup(this.file);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      return this.refuse(parts, error.issues.map(formatIssue), "invalid");
    }
    const running = setupInForce(parts.setup);
    const tickRefusal = checkTickMs(
      runner.tickMs,
      loaded.intersection.intersection,
      loaded.intersection.modules,
      `the running --tick-ms ${runner.tickMs}`,
    );
    if (tickRefusal) return this.refuse(parts, [tickRefusal], "invalid");

    const verdict = reloadVerdict(running, loaded);
    if (verdict.kind === "unchanged") {
      this.log.info(
        { file: this.file, digest: verdict.digest },
        `${displayPath(this.file)}: no change to what the gateway runs by; nothing to reload`,
      );
      return { outcome: "unchanged" };
    }
    if (verdict.kind === "refused")
      return this.refuse(parts, [...verdict.reasons, RESTART_HINT], "needs-restart");

    const stopBound = this.stopBoundRefusal(parts, loaded.intersection.intersection);
    if (stopBound) return this.refuse(parts, [stopBound, RESTART_HINT], "needs-restart");

    const seq = runner.controller.seq;
    const now = clock.now();
    const waiting = waitingChange(seq);
    if (waiting)
      return this.refuse(parts, [
        `plan ${waiting.plan.planId} v${waiting.plan.version} waits for its cycle boundary (${new Date(waiting.activationWallMs).toISOString()}): send SIGHUP again once it has taken effect`,
      ]);
    const controllerRefusal = planChangeRefusal(seq, now.wallMs, this.stopping);
    if (controllerRefusal) return this.refuse(parts, [controllerRefusal]);

    const reloaded = loaded.intersection.intersection;
    const compiled = recompilePlan(seq.plan, seq.intersection, reloaded);
    if (!compiled.ok)
      return this.refuse(
        parts,
        compiled.issues.map(
          (issue) =>
            `the plan in force (${seq.plan.planId} v${seq.plan.version}) does not fit the reloaded file: ${issue.message}`,
        ),
        "plan-does-not-fit",
      );
    const scheduleProblems = this.scheduledPlansThatDoNotFit(parts, seq, reloaded);
    if (scheduleProblems.length > 0) return this.refuse(parts, scheduleProblems, "plan-does-not-fit");

    this.lastRejection = null;
    const plan = compiled.value;
    runner.dispatch({
      type: "schedule-plan",
      plan,
      activationWallMs: now.wallMs,
      txnId: null,
      intersection: reloaded,
    });
    parts.bus.emit("changed");
    const after = runner.controller.seq;
    if (!isWaiting(after, plan))
      return this.refuse(parts, [
        `the controller did not take the change: ${this.lastRejection ?? "no reason given"}`,
      ]);

    const previous = reloadedSetups.get(parts.setup);
    reloadedSetups.set(parts.setup, loaded);
    this.awaiting = { intersection: reloaded, plan, previous };
    const when =
      after.mode === "running"
        ? "at the next cycle boundary"
        : `when the intersection next enters its cycle (it is in ${after.mode} now)`;
    parts.audit.now("config-reloaded", null, {
      file: this.file,
      by: "SIGHUP",
      changes: verdict.changes,
      plan: { id: plan.planId, version: plan.version },
      digest: verdict.digest,
    });
    this.log.info(
      { file: this.file, changes: verdict.changes, plan: { id: plan.planId, version: plan.version } },
      `reloaded ${displayPath(this.file)} (${verdict.changes.join("; ")}): takes effect with plan ${plan.planId} v${plan.version} ${when}`,
    );
    return {
      outcome: "reloaded",
      changes: verdict.changes,
      plan: { id: plan.planId, version: plan.version },
    };
  }

  /**
   * A clean stop waits at most the node's bound for all-red, and the node computes it from the
   * intersection its runner was started with (`runner.intersection`, GatewayNode.cleanStopBoundMs): a
   * reload that lengthens the longest minimum + clearance + red clearance beyond it could have a stop
   * cut a clearance at the bound. Refused until the bound follows the intersection in force.
   */
  private stopBoundRefusal(parts: GatewayParts, reloaded: Intersection): string | null {
    const { runner } = parts;
    const boundMs = stopBoundMs(runner.intersection, runner.tickMs);
    const needMs = stopBoundMs(reloaded, runner.tickMs);
    if (needMs <= boundMs) return null;
    return `it lengthens the longest minimum green or walk with its clearances (a clean stop's bound) from ${formatSeconds(boundMs)} to ${formatSeconds(needMs)}, beyond the bound this run started with: a stop could cut a clearance`;
  }

  /**
   * The plans a committed schedule will hand the controller later were compiled against the running
   * file: each must compile against the reloaded one too, or a later scheduled change could not run.
   */
  private scheduledPlansThatDoNotFit(
    parts: GatewayParts,
    seq: SequencerState,
    reloaded: Intersection,
  ): string[] {
    const schedule = storedSchedule(parts);
    if (!schedule) return [];
    const problems: string[] = [];
    for (const plan of Object.values(schedule.plans)) {
      if (plan.intersectionId !== reloaded.id) continue;
      const checked = recompilePlan(plan, seq.intersection, reloaded);
      if (!checked.ok)
        problems.push(
          ...checked.issues.map(
            (issue) =>
              `plan ${plan.planId} v${plan.version} of schedule ${schedule.scheduleId} v${schedule.version} does not fit the reloaded file: ${issue.message}`,
          ),
        );
    }
    return problems;
  }

  private refuse(parts: GatewayParts, reasons: readonly string[], kind = "not-now"): ReloadOutcome {
    const file = displayPath(this.file);
    this.log.error(
      { file: this.file, kind, reasons },
      `reload of ${file} refused; the gateway runs on with the configuration it has: ${reasons.length === 1 ? reasons[0] : `${reasons.length} problems`}`,
    );
    if (reasons.length > 1) for (const reason of reasons) this.log.error({ file: this.file }, reason);
    parts.audit.now("config-reload-refused", null, { file: this.file, by: "SIGHUP", kind, reasons });
    return { outcome: "refused", reasons };
  }

  /** Each tick: has the reloaded configuration come into force at its boundary, or was it dropped? */
  private watchBoundary(parts: GatewayParts): void {
    const awaiting = this.awaiting;
    if (!awaiting) return;
    const seq = parts.runner.controller.seq;
    const taken =
      seq.intersection === awaiting.intersection ||
      (!isWaiting(seq, awaiting.plan) &&
        canonicalJson(seq.intersection) === canonicalJson(awaiting.intersection));
    if (taken) {
      this.awaiting = null;
      this.log.info(
        { plan: { id: seq.plan.planId, version: seq.plan.version } },
        `the reloaded ${displayPath(this.file)} is in force from this cycle boundary`,
      );
      return;
    }
    if (isWaiting(seq, awaiting.plan)) return;
    this.awaiting = null;
    if (awaiting.previous) reloadedSetups.set(parts.setup, awaiting.previous);
    else reloadedSetups.delete(parts.setup);
    this.log.error(
      { plan: { id: seq.plan.planId, version: seq.plan.version } },
      `the reloaded ${displayPath(this.file)} did not come into force (its change was superseded or dropped before its boundary): the gateway runs the configuration it had; send SIGHUP again`,
    );
    parts.audit.soon("config-reload-dropped", null, { file: this.file });
  }
}

/** Is this plan (by reference: the one the reload scheduled) still waiting for its boundary? */
function isWaiting(seq: SequencerState, plan: IntersectionPlan): boolean {
  return seq.pending.some((p) => p.plan === plan) || seq.next?.activation?.plan === plan;
}

/** A plan change that waits for its boundary (a corridor's, a schedule's, a reload's), or null. */
function waitingChange(seq: SequencerState): PendingPlan | null {
  return seq.pending[0] ?? seq.next?.activation ?? null;
}

/** The committed schedule this gateway runs by, as its store holds it (null: none, or unreadable). */
function storedSchedule(parts: GatewayParts): CompiledSchedule | null {
  try {
    const record = parts.store.scheduleInForce();
    if (!record || record.scheduleKey === null || record.version === null) return null;
    const body = parts.store.planBody(record.scheduleKey, record.version) as CompiledSchedule | null;
    return isCompiledSchedule(body) ? body : null;
  } catch (error) {
    if (!isStoreFailure(error)) throw error;
    parts.log.warn(
      { error: error.message },
      "cannot read the schedule in force: its plans not checked against the reloaded file",
    );
    return null;
  }
}

/**
 * The gateway command's SIGHUP: installed before the gateway starts (SIGHUP's default action would end
 * the process), it reloads once the gateway runs; register `feature` with the gateway.
 */
export function onReloadSignal(file: string, log: Logger): ConfigReload {
  const reload = new ConfigReload(file, log);
  process.on("SIGHUP", () => {
    reload.reload();
  });
  return reload;
}
