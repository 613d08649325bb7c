import type { Command } from "commander";
import { displayPath } from "../config/errors.js";
import { loadCorridor } from "../config/load.js";
import { findScheduleCorridor, loadSchedule } from "../config/load-schedule.js";
import {
  type ChangeRow,
  changeRow,
  changesOnDays,
  dstNote,
  MAX_SHOW_DAYS,
} from "../config/schedule-changes.js";
import type { CivilDate } from "../core/time/zone.js";
import { formatDate, localTimeOf } from "../core/time/zone.js";
import { UsageError } from "./usage-error.js";

interface ShowFlags {
  corridor?: string;
  schedule: string;
  from?: string;
  days: string;
  json?: boolean;
}

/**
 * `greenwave schedule …`: registers the command group with its `show` subcommand, and returns it so
 * that other subcommands join the same group (`extra` runs on it before it is returned).
 */
export function registerScheduleCommands(program: Command, extra?: (group: Command) => void): Command {
  const schedule = program
    .command("schedule")
    .description("time-of-day schedules: which plan a corridor runs when");
  schedule
    .command("show")
    .description(
      "list a schedule's changes day by day: local date and time, weekday, UTC instant, day plan and action, marking the ones daylight-saving time moves",
    )
    .requiredOption("--schedule <file>", "the schedule file")
    .option(
      "--corridor <file>",
      "the corridor file (default: the one with the schedule's corridor id, beside the schedule or one directory up)",
    )
    .option("--from <date>", "first day, YYYY-MM-DD, in the corridor's time zone (default: today there)")
    .option("--days <n>", `how many days, 1–${MAX_SHOW_DAYS}`, "7")
    .option("--json", "machine-readable output: one JSON object")
    .action((flags: ShowFlags) => {
      showSchedule(flags, Date.now());
    });
  extra?.(schedule);
  return schedule;
}

function showSchedule(flags: ShowFlags, nowMs: number): void {
  const days = Number(flags.days);
  if (!Number.isInteger(days) || days < 1 || days > MAX_SHOW_DAYS)
    throw new UsageError(`--days must be a whole number from 1 to ${MAX_SHOW_DAYS}, not ${flags.days}`);
  const from = flags.from === undefined ? undefined : parseDate(flags.from);
  const corridor = loadCorridor(flags.corridor ?? findScheduleCorridor(flags.schedule));
  const { schedule } = loadSchedule(flags.schedule, corridor);
  const first = from ?? localTimeOf(schedule.timeZone, nowMs);
  const { inForce, changes } = changesOnDays(schedule, first, days);
  const rows = changes.map((c) => changeRow(schedule, c));
  const before = changeRow(schedule, inForce);
  if (flags.json) {
    const out = {
      schedule: schedule.id,
      version: schedule.version,
      corridor: corridor.raw.id,
      timeZone: schedule.timeZone,
      from: formatDate(first),
      days,
      inForce: before,
      changes: rows,
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return;
  }
  process.stdout.write(
    `schedule ${schedule.id} v${schedule.version} of corridor ${corridor.raw.id} (${displayPath(corridor.file)}), time zone ${schedule.timeZone}: ${days} day${days === 1 ? "" : "s"} from ${formatDate(first)}\n`,
  );
  process.stdout.write(
    `in force as ${formatDate(first)} begins: ${before.action} (since ${before.weekday} ${before.date} ${before.local}, day plan ${before.dayPlan})\n`,
  );
  if (rows.length === 0) {
    process.stdout.write("no changes in these days\n");
    return;
  }
  process.stdout.write(table(rows));
}

/** The changes as aligned columns; a change that daylight-saving time moved says how in its last. */
function table(rows: readonly ChangeRow[]): string {
  const lines = [
    ["date", "day", "local", "UTC", "day plan", "action", ""],
    ...rows.map((r) => [
      r.date,
      r.weekday,
      r.local,
      `${r.utc.slice(0, 10)} ${r.utc.slice(11, 16)}Z`,
      r.dayPlan,
      r.action,
      dstNote(r),
    ]),
  ];
  const widths = lines[0]?.map((_, col) => Math.max(...lines.map((l) => (l[col] ?? "").length))) ?? [];
  return lines
    .map((l) =>
      l
        .map((cell, col) => cell.padEnd(widths[col] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .map((l) => `${l}\n`)
    .join("");
}

function parseDate(text: string): CivilDate {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  const date = match ? { year: Number(match[1]), month: Number(match[2]), day: Number(match[3]) } : undefined;
  const check = date && new Date(Date.UTC(date.year, date.month - 1, date.day));
  if (
    !date ||
    !check ||
    date.year < 1970 ||
    check.getUTCMonth() !== date.month - 1 ||
    check.getUTCDate() !== date.day
  )
    throw new UsageError(`--from must be a date YYYY-MM-DD (1970 or later), not ${text}`);
  return date;
}
