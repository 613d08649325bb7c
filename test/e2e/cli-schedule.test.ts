import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildOnce, CLI } from "./cli.js";

/**
 * Schedules on the command line, run as a user runs them: `config check` of a schedule file (and of a
 * corridor's time zone), and `schedule show`.
 */

beforeAll(buildOnce, 180_000);

const greenwave = (...args: string[]) =>
  spawnSync("node", [CLI, ...args], { encoding: "utf8", timeout: 20_000 });

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A copy of the example configuration with its corridor at this time reference (lines under `timeReference:`). */
function exampleCopy(timeReference: string): string {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-cli-schedule-"));
  dirs.push(dir);
  for (const part of ["corridor.yaml", "intersections", "plans", "devices", "schedules"])
    cpSync(join("config", part), join(dir, part), { recursive: true });
  edit(join(dir, "corridor.yaml"), /timeReference:\n( {2}.*\n)+/, `timeReference:\n${timeReference}`);
  return dir;
}

const UTC_CORRIDOR = '  dailySync: "02:00:00"\n  utcOffset: "+00:00"\n';
const BERLIN_CORRIDOR = '  dailySync: "02:00:00"\n  timeZone: Europe/Berlin\n';

function edit(file: string, from: string | RegExp, to: string): void {
  const text = readFileSync(file, "utf8");
  const changed = text.replace(from, to);
  if (changed === text) throw new Error(`${file}: ${String(from)} not found`);
  writeFileSync(file, changed);
}

/** `line:column` (1-based) of the first `token` on the first line of a file that contains `marker`. */
function at(file: string, marker: string, token: string): string {
  const lines = readFileSync(file, "utf8").split("\n");
  const line = lines.findIndex((l) => l.includes(marker) && !l.startsWith("#"));
  const column = (lines[line] ?? "").indexOf(token);
  if (line < 0 || column < 0) throw new Error(`${file}: no ${token} on a line with ${marker}`);
  return `${line + 1}:${column + 1}`;
}

const errorLines = (stderr: string) =>
  stderr.split("\n").filter((l) => l !== "" && !/problems? found$/.test(l));

const CHANGE_LINE =
  /^ok {4}(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{4}-\d\d-\d\d \d\d:\d\d \(\d{4}-\d\d-\d\d \d\d:\d\d UTC\) (am-peak|off-peak|pm-peak|flash), day plan (weekday|weekend|holiday)/;

describe("config check of a schedule file", () => {
  it("the demo schedule passes: ok schedule <id> v<version>, then its next 10 changes, local and UTC", () => {
    const run = greenwave("config", "check", "config/schedules/main-street.yaml");
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout.split("\n").filter((l) => l.startsWith("ok"));
    expect(lines[0]).toMatch(
      /^ok {2}schedule main-street-weekly v1: corridor main-street \(config\/corridor\.yaml\), time zone .*, 3 day plans, 4 calendar rules, plans off-peak, am-peak, pm-peak; next changes:$/,
    );
    expect(lines.slice(1)).toHaveLength(10);
    for (const line of lines.slice(1)) expect(line).toMatch(CHANGE_LINE);
  });

  it("the PM peak plan compiles for every intersection of the corridor", () => {
    const run = greenwave("config", "check", "config/plans/pm-peak.yaml");
    expect(run.status, run.stderr).toBe(0);
    for (const id of ["elm", "oak", "pine", "cedar"])
      expect(run.stdout).toContain(`ok  plan pm-peak v1 at ${id}: cycle 100 s`);
  });

  it.each([
    [
      "schedule-unknown-plan.yaml",
      ["pm-peek }", "pm-peek"],
      "dayPlans.weekday[2].action: plan pm-peek is not a plan of corridor main-street: there is no pm-peek.yaml in its plans directory config/plans (it has am-peak, off-peak, pm-peak; or write flash for scheduled flash)",
    ],
    [
      "schedule-overlap.yaml",
      ["[fri, sat, sun]", "fri"],
      "calendar[1].weekdays[0]: fri is already in calendar[0]: weekdays rules have equal precedence, so they must not pick the same day; remove it from one of them",
    ],
    [
      "schedule-bad-time.yaml",
      ["24:30", '"24:30"'],
      'dayPlans.weekday[1].at: "24:30" is not a time of day: write HH:MM, from 00:00 to 23:59',
    ],
    [
      "corridor-unknown-zone.yaml",
      ["timeZone:", "Europe/Berln"],
      'timeReference.timeZone: unknown time zone "Europe/Berln": name an IANA time zone such as Europe/Berlin, America/New_York or UTC (did you mean Europe/Berlin?)',
    ],
  ])(
    "config/broken/%s: file:line:column: field: message, exit 1, no stack trace",
    (name, [marker, token], message) => {
      const file = `config/broken/${name}`;
      const run = greenwave("config", "check", file);
      expect(run.status, run.stdout).toBe(1);
      expect(errorLines(run.stderr)).toEqual([
        `${file}:${at(file, marker as string, token as string)}: ${message}`,
      ]);
      expect(run.stderr).not.toMatch(/^\s+at /m);
    },
  );

  it("every problem of a schedule in one run: its own and its plans', naming the intersection a plan fails", () => {
    const dir = exampleCopy(UTC_CORRIDOR);
    const schedule = join(dir, "schedules/main-street.yaml");
    const plan = join(dir, "plans/pm-peak.yaml");
    edit(
      plan,
      "{ id: side, groups: [S, PM], splitSeconds: 35 }",
      "{ id: side, groups: [S, PM, X], splitSeconds: 35 }",
    );
    edit(schedule, '{ at: "09:30", action: off-peak }', '{ at: "09:30", action: offpeak }');
    edit(schedule, "{ weekdays: [sat, sun], dayPlan: weekend }", "{ weekdays: [sat], dayPlan: weekend }");
    const run = greenwave("config", "check", schedule);
    expect(run.status).toBe(1);
    expect(errorLines(run.stderr)).toEqual([
      // A field that is missing (here, a rule) is pointed at where it would go: the calendar's first rule.
      `${schedule}:${at(schedule, "{ weekdays: [mon", "-")}: calendar: no weekdays rule covers sun: every day needs a day plan; add { weekdays: [sun], dayPlan: … } or add the days to a weekdays rule`,
      expect.stringMatching(
        new RegExp(
          `^${escape(schedule)}:${at(schedule, "offpeak", "offpeak")}: dayPlans\\.weekday\\[2\\]\\.action: plan offpeak is not a plan of corridor main-street`,
        ),
      ),
      `${schedule}:${at(schedule, "pm-peak }", "pm-peak")}: dayPlans.weekday[3].action: plan pm-peak is not valid for intersection cedar (${plan}: its problems follow)`,
      `${plan}:${at(plan, "[S, PM, X]", "X]")}: intersections.cedar.stages[1].groups[2]: plan pm-peak, intersection cedar: stage side names group "X", which intersection cedar does not have (it has M, S, SL, PS, PM)`,
    ]);
    expect(run.stderr).toContain("4 problems found");
  });

  it("a corridor that gives both timeZone and utcOffset fails at utcOffset; one with utcOffset alone passes with a note", () => {
    const both = exampleCopy(`${BERLIN_CORRIDOR}  utcOffset: "+01:00"\n`);
    const corridor = join(both, "corridor.yaml");
    const run = greenwave("config", "check", corridor);
    expect(run.status).toBe(1);
    expect(errorLines(run.stderr)).toEqual([
      `${corridor}:${at(corridor, "utcOffset", '"+01:00"')}: timeReference.utcOffset: give timeZone or utcOffset, not both: timeZone already says the offset at every date; remove utcOffset`,
    ]);
    const fixed = join(exampleCopy(UTC_CORRIDOR), "corridor.yaml");
    const ok = greenwave("config", "check", fixed);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(
      `note  ${fixed}:${at(fixed, "utcOffset", '"+00:00"')}: timeReference.utcOffset: utcOffset is a fixed offset: name the corridor's time zone (timeZone: Europe/Berlin) so that its sync point and schedules follow daylight-saving time`,
    );
  });
});

describe("greenwave schedule show", () => {
  it("lists each day's changes: local date and time, weekday, UTC, day plan and action", () => {
    const dir = exampleCopy(UTC_CORRIDOR);
    const run = greenwave(
      "schedule",
      "show",
      "--schedule",
      join(dir, "schedules/main-street.yaml"),
      "--from",
      "2026-12-24",
      "--days",
      "3",
    );
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toBe(
      [
        `schedule main-street-weekly v1 of corridor main-street (${join(dir, "corridor.yaml")}), time zone UTC: 3 days from 2026-12-24`,
        "in force as 2026-12-24 begins: flash (since wed 2026-12-23 23:00, day plan weekday)",
        "date        day  local  UTC                day plan  action",
        "2026-12-24  thu  05:00  2026-12-24 05:00Z  weekday   off-peak",
        "2026-12-24  thu  06:30  2026-12-24 06:30Z  weekday   am-peak",
        "2026-12-24  thu  09:30  2026-12-24 09:30Z  weekday   off-peak",
        "2026-12-24  thu  15:30  2026-12-24 15:30Z  weekday   pm-peak",
        "2026-12-24  thu  19:00  2026-12-24 19:00Z  weekday   off-peak",
        "2026-12-24  thu  23:00  2026-12-24 23:00Z  weekday   flash",
        "2026-12-25  fri  09:00  2026-12-25 09:00Z  holiday   off-peak",
        "2026-12-25  fri  22:00  2026-12-25 22:00Z  holiday   flash",
        "2026-12-26  sat  07:00  2026-12-26 07:00Z  weekend   off-peak",
        "2026-12-26  sat  23:00  2026-12-26 23:00Z  weekend   flash",
        "",
      ].join("\n"),
    );
  });

  it("--json, across both daylight-saving changes: a change in the gap moves to its end, one in the fold happens first", () => {
    const dir = exampleCopy(BERLIN_CORRIDOR);
    const schedule = join(dir, "schedules/main-street.yaml");
    // The weekend's night ends at 02:30 in this copy: in Berlin's gap on 2026-03-29, in its fold on 2026-10-25.
    edit(schedule, '{ at: "07:00", action: off-peak }', '{ at: "02:30", action: off-peak }');
    const show = (from: string) => {
      const run = greenwave(
        "schedule",
        "show",
        "--corridor",
        join(dir, "corridor.yaml"),
        "--schedule",
        schedule,
        "--from",
        from,
        "--days",
        "1",
        "--json",
      );
      expect(run.status, run.stderr).toBe(0);
      return JSON.parse(run.stdout) as { timeZone: string; inForce: unknown; changes: unknown[] };
    };
    const spring = show("2026-03-29");
    expect(spring.timeZone).toBe("Europe/Berlin");
    expect(spring.inForce).toEqual({
      date: "2026-03-28",
      weekday: "sat",
      at: "23:00",
      local: "23:00",
      utc: "2026-03-28T22:00:00.000Z",
      dayPlan: "weekend",
      action: "flash",
    });
    expect(spring.changes).toEqual([
      {
        date: "2026-03-29",
        weekday: "sun",
        at: "02:30",
        local: "03:00",
        utc: "2026-03-29T01:00:00.000Z",
        dayPlan: "weekend",
        action: "off-peak",
        dst: "gap",
      },
      {
        date: "2026-03-29",
        weekday: "sun",
        at: "23:00",
        local: "23:00",
        utc: "2026-03-29T21:00:00.000Z",
        dayPlan: "weekend",
        action: "flash",
      },
    ]);
    expect(show("2026-10-25").changes[0]).toEqual({
      date: "2026-10-25",
      weekday: "sun",
      at: "02:30",
      local: "02:30",
      utc: "2026-10-25T00:30:00.000Z",
      dayPlan: "weekend",
      action: "off-peak",
      dst: "fold",
    });
    const text = greenwave("schedule", "show", "--schedule", schedule, "--from", "2026-03-29", "--days", "1");
    expect(text.stdout).toContain(
      "2026-03-29  sun  03:00  2026-03-29 01:00Z  weekend   off-peak  02:30 does not exist that day (clocks spring forward): at the gap's end, 03:00",
    );
  });

  it("a broken schedule: every problem, file:line:column, exit 1", () => {
    const file = "config/broken/schedule-overlap.yaml";
    const run = greenwave("schedule", "show", "--schedule", file);
    expect(run.status).toBe(1);
    expect(errorLines(run.stderr)).toEqual([
      `${file}:${at(file, "[fri, sat, sun]", "fri")}: calendar[1].weekdays[0]: fri is already in calendar[0]: weekdays rules have equal precedence, so they must not pick the same day; remove it from one of them`,
    ]);
    expect(run.stderr).not.toMatch(/^\s+at /m);
  });

  it.each([
    [["--days", "0"], "--days must be a whole number from 1 to 400, not 0"],
    [["--days", "1.5"], "--days must be a whole number from 1 to 400, not 1.5"],
    [["--from", "2026-02-30"], "--from must be a date YYYY-MM-DD (1970 or later), not 2026-02-30"],
    [["--from", "tomorrow"], "--from must be a date YYYY-MM-DD (1970 or later), not tomorrow"],
  ])("%j is a usage error: exit 2", (args, message) => {
    const run = greenwave("schedule", "show", "--schedule", "config/schedules/main-street.yaml", ...args);
    expect(run.status).toBe(2);
    expect(run.stderr).toBe(`greenwave: ${message}\n`);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
