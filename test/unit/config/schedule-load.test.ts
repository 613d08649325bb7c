import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { checkConfigFile } from "../../../gateway/config/check.js";
import { ConfigError, formatIssue } from "../../../gateway/config/errors.js";
import { loadCorridor } from "../../../gateway/config/load.js";
import { loadSchedule, scheduleFromRaw, scheduleTimeZone } from "../../../gateway/config/load-schedule.js";

/**
 * Loading a schedule file against its corridor (gateway/config/load-schedule.ts), on copies of the
 * example configuration: every problem in one run, each located in its file; the corridor's time zone.
 */

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A copy of the example configuration, to change one thing in. */
function exampleCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-schedule-load-"));
  dirs.push(dir);
  for (const part of ["corridor.yaml", "intersections", "plans", "devices", "schedules"])
    cpSync(join("config", part), join(dir, part), { recursive: true });
  return dir;
}

/** The copy's corridor with this time reference (the lines under `timeReference:`). */
function setTimeReference(dir: string, lines: string): string {
  const file = join(dir, "corridor.yaml");
  edit(file, /timeReference:\n( {2}.*\n)+/, `timeReference:\n${lines}`);
  return file;
}

function edit(file: string, from: string | RegExp, to: string): void {
  const text = readFileSync(file, "utf8");
  const changed = text.replace(from, to);
  if (changed === text) throw new Error(`${file}: ${String(from)} not found`);
  writeFileSync(file, changed);
}

/** The issues a load throws, formatted (file:line:column: field: message). */
function problemsOf(load: () => unknown): string[] {
  try {
    load();
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map(formatIssue);
    throw error;
  }
  throw new Error("loaded without a problem");
}

/** `line:column` (1-based) of the first `token` on the first line containing `marker`. */
function at(file: string, marker: string, token: string): string {
  const lines = readFileSync(file, "utf8").split("\n");
  const line = lines.findIndex((l) => l.includes(marker));
  const column = (lines[line] ?? "").indexOf(token);
  if (line < 0 || column < 0) throw new Error(`${file}: no ${token} on a line with ${marker}`);
  return `${line + 1}:${column + 1}`;
}

const DEMO = "config/schedules/main-street.yaml";
const HOUR = 3_600_000;

describe("the demo schedule", () => {
  it("loads against the example corridor, its events sorted and every plan it names compiled", () => {
    const corridor = loadCorridor("config/corridor.yaml");
    const loaded = loadSchedule(DEMO, corridor);
    expect(loaded.schedule.id).toBe("main-street-weekly");
    expect(loaded.schedule.timeZone).toBe(corridor.raw.timeReference.timeZone ?? "UTC");
    expect([...loaded.plans.keys()].sort()).toEqual(["am-peak", "off-peak", "pm-peak"]);
    const weekday = loaded.schedule.dayPlans.weekday ?? [];
    expect(weekday.map((e) => e.atMs / HOUR)).toEqual([5, 6.5, 9.5, 15.5, 19, 23]);
    expect(weekday[5]?.action).toEqual({ kind: "flash" });
    expect(loaded.schedule.calendar).toContainEqual({
      kind: "yearly",
      month: 12,
      day: 25,
      dayPlan: "holiday",
      name: "Christmas Day",
    });
    expect(loaded.schedule.calendar[0]).toEqual({ kind: "weekdays", weekdays: [1, 2, 3, 4, 5], dayPlan: "weekday" });
  });

  it("config check prints the schedule and its next 10 changes, local and UTC", () => {
    const dir = exampleCopy();
    setTimeReference(dir, '  dailySync: "02:00:00"\n  utcOffset: "+00:00"\n');
    // Thursday 2026-12-24 20:00 UTC: off-peak until the 23:00 flash, then Christmas Day's holiday plan.
    const report = checkConfigFile(join(dir, "schedules/main-street.yaml"), { nowMs: Date.UTC(2026, 11, 24, 20) });
    expect(report.issues.map(formatIssue)).toEqual([]);
    expect(report.checked[0]).toMatch(/^schedule main-street-weekly v1: corridor main-street .*time zone UTC/);
    expect(report.checked.slice(1)).toEqual([
      "  Thu 2026-12-24 23:00 (2026-12-24 23:00 UTC) flash, day plan weekday",
      "  Fri 2026-12-25 09:00 (2026-12-25 09:00 UTC) off-peak, day plan holiday",
      "  Fri 2026-12-25 22:00 (2026-12-25 22:00 UTC) flash, day plan holiday",
      "  Sat 2026-12-26 07:00 (2026-12-26 07:00 UTC) off-peak, day plan weekend",
      "  Sat 2026-12-26 23:00 (2026-12-26 23:00 UTC) flash, day plan weekend",
      "  Sun 2026-12-27 07:00 (2026-12-27 07:00 UTC) off-peak, day plan weekend",
      "  Sun 2026-12-27 23:00 (2026-12-27 23:00 UTC) flash, day plan weekend",
      "  Mon 2026-12-28 05:00 (2026-12-28 05:00 UTC) off-peak, day plan weekday",
      "  Mon 2026-12-28 06:30 (2026-12-28 06:30 UTC) am-peak, day plan weekday",
      "  Mon 2026-12-28 09:30 (2026-12-28 09:30 UTC) off-peak, day plan weekday",
    ]);
    // A fixed offset does not follow daylight-saving time: said, not an error.
    expect(report.notes.map(formatIssue)).toEqual([
      `${join(dir, "corridor.yaml")}:${at(join(dir, "corridor.yaml"), "utcOffset", '"')}: timeReference.utcOffset: utcOffset is a fixed offset: name the corridor's time zone (timeZone: Europe/Berlin) so that its sync point and schedules follow daylight-saving time`,
    ]);
  });
});

describe("every problem of a schedule in one run, located", () => {
  it("unknown plan, overlapping rules, a duplicate time, an unused day plan and the wrong corridor together", () => {
    const dir = exampleCopy();
    const file = join(dir, "schedules/main-street.yaml");
    edit(file, "corridor: main-street", "corridor: side-street");
    edit(file, '{ at: "15:30", action: pm-peak }', '{ at: "15:30", action: pm-peek }');
    edit(file, '{ at: "09:00", action: off-peak }', '{ at: "22:00", action: off-peak }');
    edit(file, "{ weekdays: [sat, sun], dayPlan: weekend }", "{ weekdays: [fri, sat, sun], dayPlan: weekend }");
    edit(file, '{ yearly: "12-25", dayPlan: holiday, name: Christmas Day }', '{ yearly: "12-25", dayPlan: weekend }');
    edit(file, '{ yearly: "01-01", dayPlan: holiday, name: New Year\'s Day }', '{ yearly: "01-01", dayPlan: weekend }');
    const problems = problemsOf(() => loadSchedule(file, loadCorridor(join(dir, "corridor.yaml"))));
    expect(problems).toEqual(
      expect.arrayContaining([
        `${file}:${at(file, "corridor: side-street", "side-street")}: corridor: schedule main-street-weekly is for corridor side-street, not main-street (${join(dir, "corridor.yaml")})`,
        expect.stringMatching(
          new RegExp(
            `^${escape(file)}:${at(file, "pm-peek", "pm-peek")}: dayPlans\\.weekday\\[3\\]\\.action: plan pm-peek is not a plan of corridor main-street: there is no pm-peek\\.yaml in its plans directory .* \\(it has am-peak, off-peak, pm-peak; or write flash for scheduled flash\\)$`,
          ),
        ),
        expect.stringMatching(
          new RegExp(`^${escape(file)}:${at(file, "[fri, sat, sun]", "fri")}: calendar\\[1\\]\\.weekdays\\[0\\]: fri is already in calendar\\[0\\]`),
        ),
        expect.stringMatching(
          new RegExp(`^${escape(file)}:\\d+:\\d+: dayPlans\\.holiday\\[1\\]\\.at: day plan "holiday" has two events at 22:00`),
        ),
        expect.stringMatching(new RegExp(`^${escape(file)}:\\d+:\\d+: dayPlans\\.holiday: day plan "holiday" is not used`)),
      ]),
    );
    expect(problems).toHaveLength(5);
  });

  it("a plan that does not compile for an intersection: the schedule names the intersection, the plan file says why", () => {
    const dir = exampleCopy();
    const plan = join(dir, "plans/pm-peak.yaml");
    // Oak's Main St stage below its minimum (and the splits no longer add up to the cycle).
    edit(plan, "{ id: main, groups: [M, PS], splitSeconds: 48 }", "{ id: main, groups: [M, PS], splitSeconds: 8 }");
    const file = join(dir, "schedules/main-street.yaml");
    const problems = problemsOf(() => loadSchedule(file, loadCorridor(join(dir, "corridor.yaml"))));
    expect(problems[0]).toBe(
      `${file}:${at(file, "pm-peak }", "pm-peak")}: dayPlans.weekday[3].action: plan pm-peak is not valid for intersection oak (${plan}: its problems follow)`,
    );
    expect(problems.slice(1).length).toBeGreaterThan(0);
    for (const line of problems.slice(1)) expect(line).toMatch(new RegExp(`^${escape(plan)}:\\d+:\\d+: intersections\\.oak`));
  });

  it("a time of day past 23:59 is a schema error at its field", () => {
    const dir = exampleCopy();
    const file = join(dir, "schedules/main-street.yaml");
    edit(file, '{ at: "23:00", action: flash }', '{ at: "24:30", action: flash }');
    expect(problemsOf(() => loadSchedule(file, loadCorridor(join(dir, "corridor.yaml"))))).toEqual([
      `${file}:${at(file, "24:30", '"24:30"')}: dayPlans.weekday[5].at: "24:30" is not a time of day: write HH:MM, from 00:00 to 23:59`,
    ]);
  });
});

describe("calendar rules: one kind each, real dates", () => {
  const demo = () => parse(readFileSync(DEMO, "utf8")) as { calendar: unknown[] };
  const issuesWith = (rule: unknown) => {
    const raw = demo();
    raw.calendar.push(rule);
    const result = scheduleFromRaw(raw, "UTC");
    return "issues" in result ? result.issues.map((i) => `${i.path.join(".")}: ${i.message}`) : [];
  };

  it.each([
    [{ date: "2026-12-24", weekdays: ["mon"], dayPlan: "weekend" }, "calendar.4.weekdays: a date rule applies whatever the weekday"],
    [{ date: "2026-12-24", yearly: "12-24", dayPlan: "weekend" }, "calendar.4: a rule is one of"],
    [{ from: "2026-07-20", dayPlan: "weekend" }, "calendar.4: a range needs both from and to"],
    [{ from: "2026-08-28", to: "2026-07-20", dayPlan: "weekend" }, "calendar.4.to: the range ends (2026-07-20) before it starts (2026-08-28)"],
    [{ date: "2026-02-29", dayPlan: "weekend" }, 'calendar.4.date: "2026-02-29" is not a date of the calendar'],
    [{ yearly: "02-30", dayPlan: "weekend" }, 'calendar.4.yearly: "02-30" is not a day of the year'],
    [{ dayPlan: "weekend" }, "calendar.4: a rule says which days it matches"],
    [{ weekdays: ["monday"], dayPlan: "weekend" }, "calendar.4.weekdays.0: must be a weekday: mon, tue"],
    [{ yearly: "12-25", dayPlan: "weekend" }, "calendar.4.yearly: 12-25 is already given by calendar[3] (Christmas Day)"],
  ])("%j: %s", (rule, expected) => {
    expect(issuesWith(rule).join("\n")).toContain(expected);
  });

  it("02-29 is a holiday of leap years, and a range without weekdays is every day of it", () => {
    expect(issuesWith({ yearly: "02-29", dayPlan: "weekend" })).toEqual([]);
    const raw = demo();
    raw.calendar.push({ from: "2026-07-20", to: "2026-08-28", dayPlan: "weekend" });
    const result = scheduleFromRaw(raw, "Europe/Berlin");
    if (!("schedule" in result)) throw new Error(JSON.stringify(result.issues));
    expect(result.schedule.calendar[4]).toMatchObject({ kind: "range", weekdays: [1, 2, 3, 4, 5, 6, 7] });
    expect(result.schedule.timeZone).toBe("Europe/Berlin");
  });

  it("a received schedule with a __proto__ key is refused, not silently changed", () => {
    const text = readFileSync(DEMO, "utf8").replace("dayPlans:\n", 'dayPlans:\n  "__proto__": [{ at: "01:00", action: flash }]\n');
    const result = scheduleFromRaw(parse(text), "UTC");
    expect("issues" in result && result.issues.map((i) => i.path.join("."))).toEqual(["dayPlans.__proto__"]);
  });
});

describe("a day plan's events may be written in any order", () => {
  it("every order loads to the same, sorted schedule", () => {
    const raw = parse(readFileSync(DEMO, "utf8")) as { dayPlans: Record<string, unknown[]> };
    const reference = scheduleFromRaw(raw, "UTC");
    if (!("schedule" in reference)) throw new Error("the demo schedule does not load");
    fc.assert(
      fc.property(fc.shuffledSubarray(raw.dayPlans.weekday ?? [], { minLength: 6, maxLength: 6 }), (events) => {
        const shuffled = scheduleFromRaw({ ...raw, dayPlans: { ...raw.dayPlans, weekday: events } }, "UTC");
        expect(shuffled).toEqual(reference);
      }),
    );
  });

  it("a duplicate time is reported at its index in the file, whatever the order", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 5 }), (a, b) => {
        fc.pre(a !== b);
        const raw = parse(readFileSync(DEMO, "utf8")) as { dayPlans: Record<string, { at: string }[]> };
        const events = raw.dayPlans.weekday ?? [];
        (events[b] as { at: string }).at = (events[a] as { at: string }).at;
        const result = scheduleFromRaw(raw, "UTC");
        const paths = "issues" in result ? result.issues.map((i) => i.path.join(".")) : [];
        expect(paths).toEqual([`dayPlans.weekday.${Math.max(a, b)}.at`]);
      }),
      { numRuns: 60 },
    );
  });
});

describe("the corridor's time zone", () => {
  const corridorWith = (timeReference: string) => setTimeReference(exampleCopy(), timeReference);

  it("timeZone: the sync point's local time, in that zone", () => {
    const corridor = loadCorridor(corridorWith('  dailySync: "02:00:00"\n  timeZone: Europe/Berlin\n'));
    expect(corridor.timeReference).toEqual({ dailySyncMs: 2 * HOUR, timeZone: "Europe/Berlin" });
    expect(scheduleTimeZone(corridor)).toEqual({ ok: true, timeZone: "Europe/Berlin" });
    expect(checkConfigFile(corridor.file).notes).toEqual([]);
  });

  it("utcOffset alone: ms after 00:00 UTC, as before; none of either is +00:00", () => {
    expect(loadCorridor(corridorWith('  dailySync: "02:00:00"\n  utcOffset: "+01:00"\n')).timeReference).toEqual({
      dailySyncMs: 1 * HOUR,
    });
    expect(loadCorridor(corridorWith('  dailySync: "02:00:00"\n')).dailySyncMs).toBe(2 * HOUR);
  });

  it("both given: an error at utcOffset", () => {
    const file = corridorWith('  dailySync: "02:00:00"\n  timeZone: Europe/Berlin\n  utcOffset: "+01:00"\n');
    expect(problemsOf(() => loadCorridor(file))).toEqual([
      `${file}:${at(file, "utcOffset", '"+01:00"')}: timeReference.utcOffset: give timeZone or utcOffset, not both: timeZone already says the offset at every date; remove utcOffset`,
    ]);
  });

  it.each([
    ["Europe/Berln", " (did you mean Europe/Berlin?)"],
    ["berlin", " (did you mean Europe/Berlin?)"],
    ["+01:00", ""],
    ["CEST", ""],
  ])("an unknown zone %s is an error at its field%s", (zone, hint) => {
    const file = corridorWith(`  dailySync: "02:00:00"\n  timeZone: "${zone}"\n`);
    expect(problemsOf(() => loadCorridor(file))).toEqual([
      `${file}:${at(file, "timeZone:", '"')}: timeReference.timeZone: unknown time zone ${JSON.stringify(zone)}: name an IANA time zone such as Europe/Berlin, America/New_York or UTC${hint}`,
    ]);
  });

  it.each([
    ["+00:00", "UTC"],
    ["+01:00", "Etc/GMT-1"],
    ["-05:00", "Etc/GMT+5"],
    ["+14:00", "Etc/GMT-14"],
  ])("a fixed offset %s runs schedules in %s", (offset, zone) => {
    const corridor = loadCorridor(corridorWith(`  dailySync: "02:00:00"\n  utcOffset: "${offset}"\n`));
    expect(scheduleTimeZone(corridor)).toEqual({ ok: true, timeZone: zone });
  });

  it("a fixed offset that is not whole hours has no zone: the schedule fails at the corridor's utcOffset", () => {
    const file = corridorWith('  dailySync: "02:00:00"\n  utcOffset: "+05:30"\n');
    const schedule = join(file, "../schedules/main-street.yaml");
    expect(problemsOf(() => loadSchedule(schedule, loadCorridor(file)))).toEqual([
      `${file}:${at(file, "utcOffset", '"+05:30"')}: timeReference.utcOffset: a schedule runs in its corridor's time zone, and the fixed offset +05:30 is not one: name the zone (timeZone: Asia/Kolkata, for example) instead of utcOffset`,
    ]);
  });
});

describe("daylight-saving time in config check's list of changes", () => {
  it("an event in the spring-forward gap happens at its end, one in the fall-back fold at its first", () => {
    const dir = exampleCopy();
    setTimeReference(dir, '  dailySync: "02:00:00"\n  timeZone: Europe/Berlin\n');
    const file = join(dir, "schedules/night.yaml");
    const raw = parse(readFileSync(DEMO, "utf8")) as Record<string, unknown>;
    writeFileSync(
      file,
      stringify({
        ...raw,
        dayPlans: {
          all: [
            { at: "02:30", action: "flash" },
            { at: "06:00", action: "off-peak" },
          ],
        },
        calendar: [{ weekdays: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], dayPlan: "all" }],
      }),
    );
    const spring = checkConfigFile(file, { nowMs: Date.UTC(2026, 2, 28, 12) }).checked;
    expect(spring[1]).toBe(
      "  Sun 2026-03-29 03:00 (2026-03-29 01:00 UTC) flash, day plan all — 02:30 does not exist that day (clocks spring forward): at the gap's end, 03:00",
    );
    const autumn = checkConfigFile(file, { nowMs: Date.UTC(2026, 9, 24, 12) }).checked;
    expect(autumn[1]).toBe(
      "  Sun 2026-10-25 02:30 (2026-10-25 00:30 UTC) flash, day plan all — 02:30 happens twice that day (clocks fall back): at the first",
    );
    expect(autumn[3]).toBe("  Mon 2026-10-26 02:30 (2026-10-26 01:30 UTC) flash, day plan all");
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
