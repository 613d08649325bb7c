import type { IntersectionView } from "../operator/operator-client.js";

/**
 * What `greenwave status` shows, from the retained statuses: the stable `--json` shape
 * (docs/protocol.md) and the table. Pure: the reader's clock comes in as `nowMs`.
 */

/** The default table fits a terminal this wide: the fault message is cut to what is left of it. */
export const TABLE_COLUMNS = 100;

/** The stable `--json` shape (docs/protocol.md). */
export function statusJson(corridor: string | null, views: readonly IntersectionView[], nowMs: number) {
  return {
    corridor,
    intersections: views.map((view) => ({
      id: view.intersection,
      corridor: view.corridor,
      name: view.status?.name ?? null,
      online: view.availability?.online ?? false,
      plan: view.status
        ? {
            id: view.status.plan.id,
            version: view.status.plan.version,
            digest: view.status.plan.digest ?? null,
          }
        : null,
      mode: view.status?.mode ?? null,
      cycle: cycleJson(view, nowMs),
      fault: view.status?.fault ?? null,
      lock: view.status?.lock ?? null,
      lastTxn: view.status?.lastTxn ?? null,
      clock: view.status?.clock ?? null,
      release: view.status?.release ?? null,
      schedule: view.status?.schedule ?? null,
      updatedAt: view.status?.at ?? null,
    })),
  };
}

export type StatusReport = ReturnType<typeof statusJson>;
type Row = StatusReport["intersections"][number];

/**
 * The cycle as published, with the second of the cycle on the reader's clock (the gateway publishes
 * when the stage changes, not every second). Never negative: the reader's clock may run behind.
 */
function cycleJson(view: IntersectionView, nowMs: number) {
  const cycle = view.status?.cycle;
  if (!cycle) return null;
  const startedMs = Date.parse(cycle.startedAt);
  return {
    stage: cycle.stage,
    second: Number.isFinite(startedMs) ? Math.max(0, Math.floor((nowMs - startedMs) / 1000)) : null,
    lengthMs: cycle.lengthMs,
    startedAt: cycle.startedAt,
    offsetErrorMs: cycle.offsetErrorMs,
    inStep: cycle.inStep,
  };
}

/** Offset error in words: no sign convention to remember. */
export function describeOffsetError(offsetErrorMs: number): string {
  const seconds = (Math.abs(offsetErrorMs) / 1000).toFixed(1);
  if (seconds === "0.0") return "0.0 s";
  return `${seconds} s ${offsetErrorMs > 0 ? "late" : "early"}`;
}

function inStep(row: Row): string {
  if (!row.online || !row.mode) return "-";
  // Gateways older than the `cycle` field: coordinated is running in step.
  return (row.cycle?.inStep ?? row.mode === "coordinated") ? "yes" : "no";
}

interface Column {
  readonly header: string;
  readonly cell: (row: Row) => string;
}

const FAULT: Column = {
  header: "FAULT",
  cell: (r) => (r.fault ? `${r.fault.kind}: ${r.fault.message}` : "-"),
};

/** The cycle columns: an offline gateway's retained cycle is history, not where it is now. */
const live = (cell: (row: Row, cycle: NonNullable<Row["cycle"]>) => string) => (row: Row) =>
  row.online && row.cycle ? cell(row, row.cycle) : "-";

const CYCLE_COLUMNS: readonly Column[] = [
  { header: "STAGE", cell: live((_, c) => c.stage) },
  {
    header: "CYCLE",
    cell: live((_, c) => `${c.second ?? "?"}/${Math.round(c.lengthMs / 1000)} s`),
  },
  { header: "OFFSET", cell: live((_, c) => describeOffsetError(c.offsetErrorMs)) },
  { header: "IN STEP", cell: inStep },
];

const PLAN: Column = { header: "PLAN", cell: (r) => (r.plan ? `${r.plan.id} v${r.plan.version}` : "-") };

/** The default table: is the wave in step, per intersection (the corridor is a title line). */
const NARROW: readonly Column[] = [
  { header: "INTERSECTION", cell: (r) => r.id },
  { header: "MODE", cell: (r) => (r.online ? (r.mode ?? "-") : "OFFLINE") },
  PLAN,
  ...CYCLE_COLUMNS,
  FAULT,
];

/** `--wide`: everything, one line per intersection. */
const WIDE: readonly Column[] = [
  { header: "CORRIDOR", cell: (r) => r.corridor },
  { header: "INTERSECTION", cell: (r) => r.id },
  { header: "ONLINE", cell: (r) => (r.online ? "online" : "OFFLINE") },
  { header: "MODE", cell: (r) => r.mode ?? "-" },
  PLAN,
  ...CYCLE_COLUMNS,
  FAULT,
  { header: "LOCK", cell: (r) => (r.lock ? `${r.lock.holder} #${r.lock.token}` : "-") },
  { header: "LAST TXN", cell: (r) => (r.lastTxn ? `${r.lastTxn.id} ${r.lastTxn.outcome}` : "-") },
  {
    header: "CLOCK",
    cell: (r) =>
      r.clock ? `${r.clock.state}${r.clock.offsetMs === null ? "" : ` ${r.clock.offsetMs} ms`}` : "-",
  },
  { header: "DIGEST", cell: (r) => r.plan?.digest ?? "-" },
  { header: "RELEASE", cell: (r) => r.release?.version ?? "-" },
  { header: "SCHEDULE", cell: (r) => (r.schedule ? `${r.schedule.id} v${r.schedule.version}` : "-") },
  { header: "WHY", cell: (r) => scheduleReason(r) },
  { header: "NEXT CHANGE", cell: (r) => nextChange(r) },
  { header: "UPDATED", cell: (r) => r.updatedAt ?? "-" },
];

const GAP = "  ";

export function renderStatusTable(report: StatusReport, url: string, options: { wide: boolean }): string {
  if (report.intersections.length === 0)
    return `no intersection has published its status on ${url}${report.corridor ? ` for corridor ${report.corridor}` : ""}\n`;
  const columns = options.wide ? WIDE : NARROW;
  const cells = report.intersections.map((row) => columns.map((column) => oneLine(column.cell(row))));
  const widths = columns.map((column, c) =>
    Math.max(column.header.length, ...cells.map((r) => (r[c] ?? "").length)),
  );
  const last = columns.length - 1;
  // The last column (the fault) takes what the others leave of the terminal; --wide shows it whole.
  const room = options.wide
    ? Number.POSITIVE_INFINITY
    : Math.max(12, TABLE_COLUMNS - widths.slice(0, last).reduce((a, w) => a + w + GAP.length, 0));
  const line = (row: readonly string[]) =>
    `${row.map((cell, c) => (c === last ? clip(cell, room) : cell.padEnd(widths[c] ?? 0))).join(GAP)}\n`;
  const header = line(columns.map((column) => column.header));
  if (options.wide) return header + cells.map(line).join("");
  const corridors = [...new Set(report.intersections.map((row) => row.corridor))];
  return corridors
    .map((corridor) => {
      const rows = report.intersections.filter((row) => row.corridor === corridor);
      return `corridor ${corridor}\n${header}${cells
        .filter((_, i) => report.intersections[i]?.corridor === corridor)
        .map(line)
        .join("")}${scheduleFooter(rows)}`;
    })
    .join("\n");
}

/** Why the plan runs: by the schedule (its day plan), by a manual change over it (until when), or neither. */
function scheduleReason(r: Row): string {
  const s = r.schedule;
  if (!s) return "-";
  switch (s.reason) {
    case "scheduled":
      return `day plan ${s.dayPlan ?? "-"}`;
    case "pending":
      return "not yet in force";
    case "manual":
      return s.manual
        ? `manual ${s.manual.plan} by ${s.manual.by}, ${s.manual.hold ? "held" : s.manual.until ? `until ${minutes(s.manual.until)}` : "until further notice"}`
        : "manual";
  }
}

function nextChange(r: Row): string {
  const next = r.schedule?.next;
  return next ? `${next.action} at ${minutes(next.at)}` : "-";
}

/** An ISO instant to the minute (`2026-12-01T14:30Z`): what a schedule's times are. */
function minutes(iso: string): string {
  const at = Date.parse(iso);
  if (!Number.isFinite(at)) return iso;
  const whole = new Date(at).toISOString();
  return at % 60_000 === 0 ? `${whole.slice(0, 16)}Z` : whole;
}

/**
 * Below a corridor's table: its schedule, why its plans run and the next change — one line when every
 * intersection says the same, else one per intersection (they should agree: a difference is news).
 */
function scheduleFooter(rows: readonly Row[]): string {
  const said = rows.map((r) =>
    r.schedule
      ? `schedule ${r.schedule.id} v${r.schedule.version}, ${scheduleReason(r)}; next: ${nextChange(r)}`
      : "no schedule",
  );
  if (said.every((s) => s === "no schedule")) return "";
  if (new Set(said).size === 1) return `${clip(said[0] as string, TABLE_COLUMNS)}\n`;
  return rows.map((r, i) => `${clip(`${r.id}: ${said[i]}`, TABLE_COLUMNS)}\n`).join("");
}

/** A cell is one line: a message with a line break must not break the table. */
function oneLine(text: string): string {
  return text.replace(/\s+/g, " ");
}

function clip(text: string, room: number): string {
  return text.length <= room ? text : `${text.slice(0, room - 3)}...`;
}
