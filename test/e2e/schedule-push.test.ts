import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  compileIntersectionPlan,
  type IntersectionSetup,
  loadCorridor,
  loadIntersectionSetup,
  loadPlan,
} from "../../gateway/config/load.js";
import { nextCommonBoundary } from "../../gateway/core/corridor/boundary.js";
import { planCycle } from "../../gateway/core/correction.js";
import { IN_STEP_TOLERANCE_MS, type IntersectionPlan } from "../../gateway/core/model.js";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { buildOnce } from "./cli.js";
import { cleanupProcesses, cli, dirs, start } from "./processes.js";
import {
  exampleCorridorCopy,
  type LampEntry,
  localClock,
  type SoonSchedule,
  soonSchedule,
  type StageStart,
  stageStarts,
} from "./schedule-push-support.js";

/**
 * Time-of-day schedules against the demo corridor, run as a user runs them: `greenwave demo`
 * (embedded broker, one gateway per intersection, simulated Modbus TCP modules) without its own
 * schedule, then `greenwave schedule push` of a schedule whose change falls within a minute or two,
 * `status`, `audit` and `plan push` over it. What the lamps did is read back from the simulated
 * modules' histories, not taken from the gateways' word.
 *
 * The plans run as shipped (off-peak 80 s, am-peak and pm-peak 100 s cycles), and the real clock: from
 * the push, the change comes 35–95 s later (a whole minute), its common boundary up to 100 s after
 * that, each intersection's first cycle start up to a (corrected) off-peak cycle after that; a manual
 * plan's boundary up to 110 s after its push, and a cycle start after that. So this file takes 4–7
 * minutes, most of it waiting.
 */

beforeAll(() => buildOnce(), 180_000);
afterAll(() => cleanupProcesses(), 60_000);

const ID = "e2e-schedule";
const AS = "e2e";
/** Lamp writes reach the simulator a tick or an exchange after the gateway decides them, more under load. */
const LAMP_TOLERANCE_MS = 600;

interface ScheduleStatus {
  id: string;
  version: number;
  reason: "scheduled" | "manual" | "pending";
  dayPlan: string | null;
  action: string | null;
  manual: { plan: string; by: string; until: string | null; hold: boolean } | null;
  next: { at: string; dayPlan: string; action: string } | null;
}

interface IntersectionStatus {
  id: string;
  online: boolean;
  mode: string;
  plan: { id: string; version: number };
  lastTxn: { id: string; outcome: string; at: string; lateByMs?: number } | null;
  cycle?: { stage: string; startedAt: string } | null;
  schedule?: ScheduleStatus | null;
  updatedAt: string | null;
}

interface AuditEvent {
  seq: number;
  at: string;
  type: string;
  actor: string | null;
  detail: Record<string, unknown>;
}

interface PushJson {
  txnId: string;
  plan: { id: string; version: number; kind?: string };
  outcome: string;
  reason: string | null;
  activationAt: string;
  votes: { intersection: string; vote: string; reason: string | null }[];
  unacknowledged: string[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` every `everyMs` (each probe runs processes: no busy loop) until it gives a value. */
async function poll<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | null> | T | null,
  everyMs = 1000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

describe("greenwave schedule push against the demo corridor, as processes", () => {
  const work = mkdtempSync(join(tmpdir(), "greenwave-schedule-push-"));
  dirs.push(work);
  const coordinatorDir = join(work, "coordinator");
  const scheduleFile = join(work, "schedule.yaml");
  let corridorFile = "";
  let zone = "";
  let ids: string[] = [];
  let broker = "";
  const controls = new Map<string, string>();
  const setups = new Map<string, IntersectionSetup>();
  /** The schedule pushed (version 1), once committed. */
  let pushed: SoonSchedule | null = null;
  let lastStatus = "";
  /** The common boundary of the change to am-peak, and when each intersection took it (its audit). */
  let switched: { boundary: number; taken: Map<string, number> } | null = null;

  const status = (): IntersectionStatus[] | null => {
    const run = cli(["status", "--broker", broker, "--json"]);
    lastStatus = `exit ${run.status}: ${run.stdout}${run.stderr}`;
    if (run.status !== 0) return null;
    const all = (JSON.parse(run.stdout) as { intersections: IntersectionStatus[] }).intersections;
    return all.sort((a, b) => a.id.localeCompare(b.id));
  };
  /** Every intersection's status, once each satisfies `ok`. */
  const statusWhen = (what: string, timeoutMs: number, ok: (i: IntersectionStatus) => boolean) =>
    poll(`${what} (last status: ${lastStatus.slice(0, 4000)})`, timeoutMs, () => {
      const all = status();
      return all && all.length === ids.length && all.every(ok) ? all : null;
    });
  const audit = (id: string): AuditEvent[] => {
    const run = cli(["audit", "--intersection", id, "--broker", broker, "--json", "--limit", "1000"]);
    expect(run.status, `audit of ${id}: ${run.stderr}`).toBe(0);
    return JSON.parse(run.stdout) as AuditEvent[];
  };
  const schedulePush = (file: string) =>
    cli([
      "schedule",
      "push",
      "--schedule",
      file,
      "--corridor",
      corridorFile,
      "--broker",
      broker,
      "--json",
      "--as",
      AS,
      "--data-dir",
      coordinatorDir,
    ]);
  const planPush = (plan: string, ...extra: string[]) =>
    cli([
      "plan",
      "push",
      "--corridor",
      corridorFile,
      "--plan",
      plan,
      "--broker",
      broker,
      "--json",
      "--as",
      AS,
      "--data-dir",
      coordinatorDir,
      ...extra,
    ]);
  const compiled = (id: string, planId: string): IntersectionPlan => {
    const setup = setups.get(id) as IntersectionSetup;
    return compileIntersectionPlan(
      setup.intersection.intersection,
      loadPlan(join(work, "config", "plans", `${planId}.yaml`)),
      setup.corridor,
    );
  };
  const expectCommitted = (run: ReturnType<typeof cli>): PushJson => {
    expect(run.status, run.stderr + run.stdout).toBe(0);
    const result = JSON.parse(run.stdout) as PushJson;
    expect(result.outcome).toBe("committed");
    expect(result.votes.map((v) => v.intersection).sort()).toEqual([...ids].sort());
    expect(result.votes.every((v) => v.vote === "yes")).toBe(true);
    expect(result.unacknowledged).toEqual([]);
    return result;
  };

  beforeAll(async () => {
    mkdirSync(join(work, "config"));
    corridorFile = await exampleCorridorCopy(join(work, "config"));
    const corridor = loadCorridor(corridorFile);
    zone = corridor.timeReference.timeZone ?? "";
    expect(zone, "the demo corridor names its time zone").not.toBe("");
    ids = [...corridor.intersectionFiles.keys()].sort();
    for (const [id, file] of corridor.intersectionFiles) setups.set(id, loadIntersectionSetup(file));
    const data = join(work, "data");
    const demo = start([
      "demo",
      "--corridor",
      corridorFile,
      "--no-schedule",
      "--port",
      "0",
      "--http-port",
      "0",
      "--console-port",
      "0",
      "--data-dir",
      data,
      "--quiet",
    ]);
    await until("the demo", 60_000, () => demo.out.includes("legend:") || demo.child.exitCode !== null);
    expect(demo.out).toContain("legend:");
    broker = /broker\s+(mqtt:\/\/\S+)/.exec(demo.out)?.[1] ?? "";
    for (const m of demo.out.matchAll(/simulator\s+([\w-]+)\/(\w+) (http:\/\/\S+)\/state/g))
      controls.set(`${m[1]}/${m[2]}`, m[3] as string);
    expect(controls.size, demo.out).toBe(ids.length);
    await statusWhen(
      "every gateway running its configured plan",
      90_000,
      (i) => i.online && (i.mode === "coordinated" || i.mode === "transition"),
    );
  }, 180_000);

  it("commits the schedule with its plans to every intersection (exit 0, every vote yes); status shows it, why the plan runs, and the next change", async () => {
    // --no-schedule: nothing governs yet.
    const before = status();
    expect(before?.map((i) => i.schedule ?? null)).toEqual(ids.map(() => null));
    expect(new Set(before?.map((i) => i.plan.id))).toEqual(new Set(["off-peak"]));

    const schedule = soonSchedule({
      id: ID,
      version: 1,
      corridor: "main-street",
      zone,
      nowMs: Date.now(),
      leadMs: 35_000,
      base: "off-peak",
      plan: "am-peak",
    });
    writeFileSync(scheduleFile, schedule.text);
    const result = expectCommitted(schedulePush(scheduleFile));
    expect(result.plan).toMatchObject({ id: ID, version: 1, kind: "schedule" });
    pushed = schedule;

    // It governs from the transaction's instant (the push's lead): until then it is pending, and what
    // comes next is the schedule taking over, not before that instant.
    const pending = status()?.filter((i) => i.schedule?.reason === "pending") ?? [];
    for (const i of pending)
      expect
        .soft(Date.parse(i.schedule?.next?.at ?? ""), `${i.id}: pending, next change ${i.schedule?.next?.at}`)
        .toBeGreaterThanOrEqual(Date.parse(result.activationAt));
    const after = await statusWhen(
      "the schedule in force everywhere",
      60_000,
      (i) => i.schedule?.reason === "scheduled",
    );
    expect(Date.now(), "status read before the change (the machine is too slow for this test)").toBeLessThan(
      schedule.changeAtMs,
    );
    for (const i of after) {
      expect(i.schedule, i.id).toEqual({
        id: ID,
        version: 1,
        reason: "scheduled",
        dayPlan: schedule.dayPlan,
        action: "off-peak",
        manual: null,
        next: {
          at: new Date(schedule.changeAtMs).toISOString(),
          dayPlan: schedule.dayPlan,
          action: "am-peak",
        },
      });
      expect(i.plan.id, i.id).toBe("off-peak");
    }
  }, 90_000);

  it("refuses a schedule naming an unknown plan, or a time like 24:30: file:line:column, exit 1, nothing pushed", () => {
    expect(pushed, "the schedule was pushed").not.toBeNull();
    const before = status();
    expect(before).not.toBeNull();
    for (const name of ["schedule-unknown-plan.yaml", "schedule-bad-time.yaml"]) {
      const file = join("config", "broken", name);
      // The broken file says what it must produce.
      const expected = /^# expect: (.*)$/m.exec(readFileSync(file, "utf8"))?.[1];
      expect(expected, `${file} states its error`).toBeDefined();
      const run = schedulePush(file);
      expect(run.status, run.stderr + run.stdout).toBe(1);
      expect(run.stdout).toBe("");
      expect(run.stderr).toMatch(new RegExp(`${basename(file).replace(".", "\\.")}:\\d+:\\d+: `));
      expect(run.stderr).toContain(expected);
      expect(run.stderr, "no stack trace").not.toMatch(/\n\s+at /);
    }
    // Nothing reached a gateway: the same schedule and the same last transaction everywhere.
    const after = status();
    expect(after?.map((i) => [i.id, i.schedule?.id, i.schedule?.version, i.lastTxn?.id])).toEqual(
      before?.map((i) => [i.id, ID, 1, i.lastTxn?.id]),
    );
  }, 60_000);

  it("at the scheduled change every intersection switches to am-peak from the same common cycle boundary, each at its own first cycle start at or after it (the gateways' audit trail)", async () => {
    const schedule = pushed;
    expect(schedule, "the schedule was pushed").not.toBeNull();
    if (!schedule) return;
    const corridor = loadCorridor(corridorFile);
    const amCycleMs = compiled(ids[0] as string, "am-peak").cycleMs;
    const boundary = nextCommonBoundary(schedule.changeAtMs, corridor.timeReference, amCycleMs);
    // The same boundary found without the code under test: the first instant at or after the change
    // whose local time is the daily sync point plus whole cycles (an hour of daylight-saving time is
    // 36 cycles of 100 s, so the local grid survives it).
    const syncS = corridor.raw.timeReference.dailySync.split(":").map(Number) as [number, number, number];
    const sinceSyncS = localClock(zone, boundary).secondsOfDay - (syncS[0] * 3600 + syncS[1] * 60 + syncS[2]);
    expect(((sinceSyncS % (amCycleMs / 1000)) + amCycleMs / 1000) % (amCycleMs / 1000)).toBe(0);
    expect(boundary).toBeGreaterThanOrEqual(schedule.changeAtMs);
    expect(boundary).toBeLessThan(schedule.changeAtMs + amCycleMs);

    // Off-peak cycles are 80 s, lengthened by at most 25 %: every intersection reaches a cycle start
    // within 100 s of the boundary.
    await statusWhen(
      "every intersection running am-peak",
      Math.max(0, boundary - Date.now()) + 160_000,
      (i) => i.plan.id === "am-peak",
    );

    // The gateways' account: the plan handed to each controller ahead of the change, for the common
    // boundary, and taken at a cycle start at or after it.
    const taken = new Map<string, number>();
    for (const id of ids) {
      const events = audit(id);
      const scheduled = events.filter((e) => e.type === "plan-scheduled" && e.detail.planId === "am-peak");
      expect(
        scheduled.map((e) => e.detail.activationWallMs),
        `${id} plan-scheduled`,
      ).toEqual([boundary]);
      const handedAt = Date.parse(scheduled[0]?.at ?? "");
      expect(handedAt, `${id} handed over before the change`).toBeLessThan(schedule.changeAtMs);
      expect(handedAt, `${id} handed over about 30 s ahead`).toBeGreaterThanOrEqual(
        schedule.changeAtMs - 31_000,
      );
      const activated = events.filter((e) => e.type === "plan-activated" && e.detail.planId === "am-peak");
      expect(activated.length, `${id} plan-activated`).toBe(1);
      const detail = activated[0]?.detail ?? {};
      expect(detail.activationWallMs, `${id} activation`).toBe(boundary);
      expect(String(detail.txnId), `${id}: the schedule's change`).toContain(`${ID} v1`);
      const lateByMs = detail.lateByMs as number;
      expect(lateByMs, `${id} entered at or after the boundary`).toBeGreaterThanOrEqual(
        -IN_STEP_TOLERANCE_MS,
      );
      expect(lateByMs, `${id} entered within an off-peak cycle`).toBeLessThan(100_000);
      taken.set(id, boundary + lateByMs);
    }

    switched = { boundary, taken };
  }, 400_000);

  it("a manual plan push wins over the schedule --until an instant or with --hold (both: usage error, exit 2), and the next schedule push ends it", async () => {
    const schedule = pushed;
    expect(schedule, "the schedule was pushed").not.toBeNull();
    if (!schedule) return;
    const pmPeak = join("config", "plans", "pm-peak.yaml");
    const untilIso = new Date(Math.ceil((Date.now() + 120_000) / 1000) * 1000).toISOString();
    const manual = expectCommitted(planPush(pmPeak, "--until", untilIso));
    const overridden = await statusWhen(
      "the manual plan over the schedule",
      30_000,
      (i) => i.schedule?.reason === "manual",
    );
    for (const i of overridden) {
      expect(i.schedule, i.id).toMatchObject({
        id: ID,
        version: 1,
        reason: "manual",
        manual: { plan: "pm-peak", until: untilIso, hold: false },
      });
      expect(i.schedule?.manual?.by, i.id).toContain(AS);
      // What comes next is the schedule taking over again, when the manual plan ends.
      expect.soft(i.schedule?.next?.at, `${i.id}: the next change is when the override ends`).toBe(untilIso);
    }

    const held = expectCommitted(planPush(pmPeak, "--hold"));
    const holding = await statusWhen(
      "the manual plan held",
      30_000,
      (i) => i.schedule?.manual?.hold === true,
    );
    for (const i of holding) {
      expect(i.schedule, i.id).toMatchObject({
        reason: "manual",
        manual: { plan: "pm-peak", until: null, hold: true },
      });
      expect(i.schedule?.next, `${i.id}: held, no change in sight`).toBeNull();
    }

    const both = planPush(pmPeak, "--until", untilIso, "--hold");
    expect(both.status, both.stderr + both.stdout).toBe(2);
    expect(both.stdout).toBe("");
    expect(both.stderr).toMatch(/--until and --hold/);
    expect(status()?.map((i) => [i.lastTxn?.id, i.schedule?.manual?.hold])).toEqual(
      holding.map((i) => [i.lastTxn?.id, true]),
    );

    // A new version of the schedule ends the override: the schedule's plan runs again.
    writeFileSync(scheduleFile, readFileSync(scheduleFile, "utf8").replace(/^version: 1$/m, "version: 2"));
    expect(readFileSync(scheduleFile, "utf8")).toMatch(/^version: 2$/m);
    const second = expectCommitted(schedulePush(scheduleFile));
    expect(second.plan).toMatchObject({ id: ID, version: 2, kind: "schedule" });
    const resumed = await statusWhen(
      "schedule version 2 in force everywhere",
      60_000,
      (i) => i.schedule?.version === 2 && i.schedule.reason === "scheduled",
    );
    for (const i of resumed)
      expect(i.schedule, i.id).toEqual({
        id: ID,
        version: 2,
        reason: "scheduled",
        dayPlan: schedule.dayPlan,
        action: "am-peak",
        manual: null,
        next: {
          at: new Date(schedule.laterAtMs).toISOString(),
          dayPlan: schedule.dayPlan,
          action: "off-peak",
        },
      });

    // Audited at every intersection: both overrides with their ends, by whom, and the new version.
    for (const id of ids) {
      const events = audit(id);
      const overrides = events
        .filter((e) => e.type === "schedule-overridden")
        .map((e) => [e.actor, e.detail.end]);
      expect(overrides, `${id} overrides audited`).toEqual([
        [`@${AS}`, { kind: "until", untilWallMs: Date.parse(untilIso) }],
        [`@${AS}`, { kind: "hold" }],
      ]);
      const adopted = events
        .filter((e) => e.type === "schedule-adopted")
        .map((e) => [e.actor, e.detail.version]);
      expect(adopted, `${id} schedules adopted`).toEqual([
        [`@${AS}`, 1],
        [`@${AS}`, 2],
      ]);
    }

    // And it is the schedule's plan that runs, also once the manual plans' instants have passed (each
    // intersection has begun a cycle at or after the later one, where a plan still waiting would start).
    const lastManualMs = Math.max(Date.parse(manual.activationAt), Date.parse(held.activationAt));
    const settled = await statusWhen(
      "every intersection past a cycle start at or after the manual plans' instant",
      Math.max(0, lastManualMs - Date.now()) + 150_000,
      (i) => Date.parse(i.cycle?.startedAt ?? "") >= lastManualMs - IN_STEP_TOLERANCE_MS,
    );
    expect(
      settled.map((i) => [i.id, i.plan.id, i.schedule?.reason, i.schedule?.action]),
      "the schedule's plan runs, not the manual one it ended",
    ).toEqual(ids.map((id) => [id, "am-peak", "scheduled", "am-peak"]));
  }, 420_000);

  // Last, so that the first am-peak cycles have run to their ends meanwhile (a manual plan pushed
  // after the switch takes effect at a later boundary: it cannot touch them).
  it("the simulated modules' lamps show each intersection leaving off-peak at its first cycle start at or after the common boundary and running am-peak's stages from there", async () => {
    expect(switched, "the switch was seen").not.toBeNull();
    if (!switched) return;
    const { boundary, taken } = switched;
    // The lamps' account: each module shows a cycle start where its gateway says it took am-peak, the
    // cycle before it started before the boundary (so this was the first at or after it), and every
    // stage of the new cycle lasts what am-peak gives it at that instant (off-peak would give others).
    const layouts = new Map(
      ids.map((id) => [id, (setups.get(id) as IntersectionSetup).intersection.modules]),
    );
    for (const id of ids) {
      const modules = layouts.get(id) ?? [];
      expect(modules.length, `${id} has one module`).toBe(1);
      const offPeak = compiled(id, "off-peak");
      const amPeak = compiled(id, "am-peak");
      // The stages are told apart by their groups: both plans must serve the same groups in the same order.
      expect(offPeak.stages.map((s) => s.member)).toEqual(amPeak.stages.map((s) => s.member));
    }
    const firstCycle = (id: string, starts: readonly StageStart[]) => {
      const first = starts.findIndex(
        (s) => s.stage === 0 && s.t >= (taken.get(id) as number) - LAMP_TOLERANCE_MS,
      );
      // Its stages, and the next cycle's start that ends the last.
      const cycle = first < 0 ? [] : starts.slice(first, first + compiled(id, "am-peak").stages.length + 1);
      return { first, cycle };
    };
    const histories = await poll(
      "every module's first am-peak cycle to end",
      150_000,
      async () => {
        const all = new Map<string, StageStart[]>();
        for (const id of ids) {
          const module = layouts.get(id)?.[0];
          if (!module) return null;
          const control = controls.get(`${id}/${module.deviceId}`) as string;
          const body = (await (await fetch(`${control}/history`)).json()) as {
            entries: LampEntry[];
            dropped: number;
          };
          expect(body.dropped, `${id} history complete`).toBe(0);
          const starts = stageStarts(body.entries, module, compiled(id, "am-peak"));
          if (firstCycle(id, starts).cycle.length <= compiled(id, "am-peak").stages.length) return null;
          all.set(id, starts);
        }
        return all;
      },
      2000,
    );
    for (const id of ids) {
      const starts = histories.get(id) as StageStart[];
      const at = taken.get(id) as number;
      const { first, cycle } = firstCycle(id, starts);
      const entered = cycle[0] as StageStart;
      expect(Math.abs(entered.t - at), `${id}: lamps switched when the gateway says`).toBeLessThan(
        LAMP_TOLERANCE_MS,
      );
      // The cycle before: its start, or the start-up's entry into it (a start-up enters the cycle where the
      // clock puts it, possibly past its first stage).
      const before = starts.slice(0, first);
      const previousCycle = before.filter((s) => s.stage === 0).at(-1) ?? before[0];
      expect(previousCycle, `${id}: a cycle ran before`).toBeDefined();
      expect(previousCycle?.t ?? 0, `${id}: the cycle before began before the boundary`).toBeLessThan(
        boundary - IN_STEP_TOLERANCE_MS + LAMP_TOLERANCE_MS,
      );
      // Every stage of that cycle lasts what am-peak gives it, corrected for a cycle starting then.
      const amPeak = planCycle(compiled(id, "am-peak"), at).durationsMs;
      const offPeak = planCycle(compiled(id, "off-peak"), at).durationsMs;
      expect(
        cycle.map((s) => s.stage),
        `${id}: stages in order, then the next cycle`,
      ).toEqual([...amPeak.map((_, k) => k), 0]);
      const observed = cycle.slice(1).map((end, k) => end.t - (cycle[k] as StageStart).t);
      const within = (expected: readonly number[]) =>
        observed.every((ms, k) => Math.abs(ms - (expected[k] as number)) < LAMP_TOLERANCE_MS);
      const says = `${id}: stages ${observed.join(", ")} ms; am-peak gives ${amPeak.join(", ")} ms, off-peak would give ${offPeak.join(", ")} ms`;
      expect(within(amPeak), says).toBe(true);
      // And the lamps tell the two apart: this check could catch a switch a cycle late.
      expect(within(offPeak), says).toBe(false);
    }
  }, 200_000);
});
