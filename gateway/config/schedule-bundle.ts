import { createHash } from "node:crypto";
import { z } from "zod";
import { canonicalJson } from "../core/canonical-json.js";
import type { IntersectionPlan } from "../core/model.js";
import type { CompiledSchedule } from "../core/schedule/schedule-runner.js";
import { sameTimeReference } from "../core/time/time-reference.js";
import { ConfigError } from "./errors.js";
import { compileIntersectionPlan, type IntersectionSetup, loadPlanData, timeReferenceOf } from "./load.js";
import { type LoadedSchedule, scheduleFromRaw, scheduleTimeZone } from "./load-schedule.js";
import type { LoadedCorridor } from "./load.js";

/**
 * A schedule as `schedule push` sends it with its PREPARE: the schedule file, the corridor's time
 * reference it was checked against, and every plan file it names — the whole of what the corridor
 * commits, so that every gateway runs the same plans by the same clock rules, or none does.
 */
export interface ScheduleBundle {
  readonly schedule: unknown;
  readonly timeReference: LoadedCorridor["raw"]["timeReference"];
  readonly plans: Readonly<Record<string, unknown>>;
}

const bundleSchema = z.strictObject({
  schedule: z.unknown(),
  timeReference: z.strictObject({
    dailySync: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d:[0-5]\d$/),
    timeZone: z.string().max(64).optional(),
    utcOffset: z
      .string()
      .regex(/^[+-](0\d|1[0-4]):[0-5]\d$/)
      .optional(),
  }),
  plans: z.record(z.string(), z.unknown()),
});

export function scheduleBundle(loaded: LoadedSchedule, corridor: LoadedCorridor): ScheduleBundle {
  return {
    schedule: loaded.raw,
    timeReference: corridor.raw.timeReference,
    plans: Object.fromEntries(loaded.plans),
  };
}

/** The bundle's content digest (canonical JSON, as a plan's): with the schedule's id and version, its identity. */
export function scheduleBundleDigest(bundle: ScheduleBundle): string {
  return createHash("sha256").update(canonicalJson(bundle), "utf8").digest("hex");
}

/**
 * A schedule bundle received with a PREPARE, checked and compiled for this intersection: its calendar,
 * the corridor's time reference (this gateway's own must be the same: the corridor switches by one
 * clock rule), and every plan it names compiled as `plan check` compiles it. Throws ConfigError with
 * what is wrong.
 */
export function compileScheduleBundle(
  label: string,
  data: unknown,
  setup: IntersectionSetup,
  claimed: { readonly id: string; readonly version: number },
): CompiledSchedule {
  const fail = (message: string): never => {
    throw new ConfigError([{ file: label, path: [], message }]);
  };
  const parsed = bundleSchema.safeParse(data);
  if (!parsed.success) return fail(`not a schedule bundle: ${parsed.error.issues[0]?.message ?? "bad shape"}`);
  const bundle = parsed.data;
  const corridor = setup.corridor;
  const theirs = timeReferenceOf(bundle.timeReference as LoadedCorridor["raw"]["timeReference"]);
  if (!sameTimeReference(theirs, corridor.timeReference))
    fail(
      `the schedule was checked against the time reference ${JSON.stringify(bundle.timeReference)}, this gateway's corridor file has ${JSON.stringify(corridor.raw.timeReference)}: every gateway of the corridor must have the same sync point and time zone`,
    );
  const zone = scheduleTimeZone(corridor);
  if (!zone.ok) return fail(zone.issue.message);
  const converted = scheduleFromRaw(bundle.schedule, zone.timeZone);
  if ("issues" in converted)
    return fail(converted.issues.map((i) => `${i.path.join(".") || "(file)"}: ${i.message}`).join("; "));
  const schedule = converted.schedule;
  if (schedule.id !== claimed.id || schedule.version !== claimed.version)
    fail(`the schedule text is ${schedule.id} v${schedule.version}, not ${claimed.id} v${claimed.version}`);
  const me = setup.intersection.intersection.id;
  const plans: Record<string, IntersectionPlan> = {};
  for (const events of Object.values(schedule.dayPlans))
    for (const event of events) {
      if (event.action.kind !== "plan" || plans[event.action.planId]) continue;
      const planId = event.action.planId;
      const raw = Object.hasOwn(bundle.plans, planId) ? bundle.plans[planId] : undefined;
      if (raw === undefined) fail(`the schedule names plan ${planId}, which its bundle does not hold`);
      const plan = loadPlanData(`${label}: plan ${planId}`, raw, me);
      if (plan.raw.id !== planId) fail(`the bundle's plan ${planId} is plan ${plan.raw.id}`);
      plans[planId] = compileIntersectionPlan(setup.intersection.intersection, plan, corridor);
    }
  return {
    kind: "schedule",
    scheduleId: schedule.id,
    version: schedule.version,
    digest: scheduleBundleDigest(bundle as ScheduleBundle),
    schedule,
    timeReference: corridor.timeReference,
    plans,
  };
}
