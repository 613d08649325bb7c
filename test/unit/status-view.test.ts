import { describe, expect, it } from "vitest";
import { listPlanFiles, loadCorridor, loadPlan } from "../../gateway/config/load.js";
import {
  describeOffsetError,
  renderStatusTable,
  statusJson,
  TABLE_COLUMNS,
} from "../../gateway/cli/status-view.js";
import type { IntersectionView } from "../../gateway/operator/operator-client.js";
import type { Status } from "../../gateway/protocol/messages.js";
import { exampleStatus } from "../support/status-fixture.js";

const NOW = Date.parse("2026-11-30T10:00:00.000Z");
const corridor = loadCorridor("config/corridor.yaml");
const plans = listPlanFiles(corridor).map((file) => loadPlan(file).raw);
const ids = corridor.raw.intersections.map((i) => i.id);
const LONG_FAULT =
  "red lamp of group M failed: no current on channel 3 while red was commanded for 300 ms; the intersection flashes until an operator resets it (check the lamp and its load switch)";

const status = (id: string, position: number, extra: Partial<Status> = {}): Status =>
  exampleStatus(id, position, NOW - 5_000, extra);

function view(s: Status, online = true): IntersectionView {
  return {
    corridor: s.corridor,
    intersection: s.intersection,
    availability: { v: 1, online },
    status: s,
  };
}

/**
 * The widest row each intersection of the example corridor can give: its longest plan id at a large
 * version, its longest stage id, a cycle lengthened by half, an offset error of half that cycle.
 */
function widestViews(): IntersectionView[] {
  return ids.map((id, position) => {
    const plan = plans.reduce((a, b) => (b.id.length > a.id.length ? b : a));
    const stage = plans
      .flatMap((p) => p.intersections[id]?.stages.map((s) => s.id) ?? [])
      .reduce((a, b) => (b.length > a.length ? b : a), "");
    const lengthMs = Math.max(...plans.map((p) => p.cycleSeconds)) * 1500;
    return view(
      status(id, position, {
        mode: "coordinated",
        plan: { id: plan.id, version: 999 },
        cycle: {
          stage,
          startedAt: new Date(NOW - (lengthMs - 500)).toISOString(),
          lengthMs,
          offsetErrorMs: -lengthMs / 2,
          inStep: false,
        },
        fault: { kind: "observed-conflict", message: LONG_FAULT, groups: ["M", "S"], at: "x" },
      }),
    );
  });
}

describe("greenwave status, the table", () => {
  it("fits 100 columns for the example corridor, the fault cut to what is left; --wide shows it whole", () => {
    const report = statusJson(null, widestViews(), NOW);
    const table = renderStatusTable(report, "mqtt://broker", { wide: false });
    const lines = table.trimEnd().split("\n");
    expect(lines[0]).toBe("corridor main-street");
    expect(lines[1]).toMatch(/^INTERSECTION\s+MODE\s+PLAN\s+STAGE\s+CYCLE\s+OFFSET\s+IN STEP\s+FAULT$/);
    expect(lines).toHaveLength(2 + ids.length);
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(TABLE_COLUMNS);
    // The fault was longer than the room left: cut, and said to be (its kind first).
    expect(lines[2]).toMatch(/ observed-con\S*\.\.\.$/);
    const wide = renderStatusTable(report, "mqtt://broker", { wide: true });
    expect(wide).toContain(LONG_FAULT);
    expect(wide.split("\n")[0]).toMatch(
      /^CORRIDOR\s+INTERSECTION\s+ONLINE\s+MODE\s+PLAN\s+STAGE\s+CYCLE\s+OFFSET\s+IN STEP\s+FAULT\s+LOCK\s+LAST TXN\s+CLOCK\s+DIGEST\s+RELEASE\s+SCHEDULE\s+WHY\s+NEXT CHANGE\s+UPDATED$/,
    );
  });

  it("says where each intersection is in its cycle and whether it is in step", () => {
    const cycle = (offsetErrorMs: number, inStep: boolean) => ({
      stage: "main",
      startedAt: new Date(NOW - 12_400).toISOString(),
      lengthMs: 100_000,
      offsetErrorMs,
      inStep,
    });
    const views = [
      view(status("elm", 0, { mode: "transition", cycle: cycle(14_100, false) })),
      view(status("oak", 1, { mode: "coordinated", cycle: cycle(-300, true) })),
      // An older gateway: no `cycle` field; its mode still says whether it is in step.
      view(status("pine", 2, { mode: "coordinated" })),
      view(status("cedar", 3, { mode: "flash", cycle: null })),
      view(status("ash", 4, { mode: "coordinated", cycle: cycle(0, true) }), false),
      // A maintenance hold (greenwave hold): the stage it keeps, its cycle second running on.
      view(status("birch", 5, { mode: "hold", cycle: cycle(0, true) })),
    ];
    const table = renderStatusTable(statusJson("main-street", views, NOW), "u", { wide: false });
    const row = (id: string) => table.split("\n").find((l) => l.startsWith(`${id} `)) ?? "";
    expect(row("elm")).toMatch(/^elm\s+transition\s+off-peak v1\s+main\s+12\/100 s\s+14\.1 s late\s+no\s+-$/);
    expect(row("oak")).toMatch(
      /^oak\s+coordinated\s+off-peak v1\s+main\s+12\/100 s\s+0\.3 s early\s+yes\s+-$/,
    );
    expect(row("pine")).toMatch(/^pine\s+coordinated\s+off-peak v1\s+-\s+-\s+-\s+yes\s+-$/);
    expect(row("cedar")).toMatch(/^cedar\s+flash\s+off-peak v1\s+-\s+-\s+-\s+no\s+-$/);
    // Offline: the retained cycle is history, not where it is now.
    expect(row("ash")).toMatch(/^ash\s+OFFLINE\s+off-peak v1\s+-\s+-\s+-\s+-\s+-$/);
    expect(row("birch")).toMatch(/^birch\s+hold\s+off-peak v1\s+main\s+12\/100 s\s+0\.0 s\s+yes\s+-$/);
  });

  it("says when no intersection has published", () => {
    expect(renderStatusTable(statusJson("x", [], NOW), "mqtt://b", { wide: false })).toBe(
      "no intersection has published its status on mqtt://b for corridor x\n",
    );
  });
});

describe("greenwave status, the schedule line", () => {
  const scheduled: Status["schedule"] = {
    id: "weekly",
    version: 3,
    reason: "scheduled",
    dayPlan: "weekday",
    action: "am-peak",
    manual: null,
    next: { at: "2026-11-30T08:30:00.000Z", dayPlan: "weekday", action: "off-peak" },
  };

  it("says once, under the corridor's table, what every intersection agrees on", () => {
    const views = ids.map((id, i) => view(status(id, i, { schedule: scheduled })));
    const lines = renderStatusTable(statusJson(null, views, NOW), "mqtt://b", { wide: false })
      .trimEnd()
      .split("\n");
    expect(lines.at(-1)).toBe("schedule weekly v3, day plan weekday; next: off-peak at 2026-11-30T08:30Z");
    expect(lines).toHaveLength(3 + ids.length);
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(TABLE_COLUMNS);
  });

  it("says it per intersection when they differ, and nothing without a schedule", () => {
    const manual: Status["schedule"] = {
      ...scheduled,
      reason: "manual",
      dayPlan: null,
      action: null,
      manual: { plan: "pm-peak", by: "@alice", until: null, hold: true },
      next: null,
    };
    const views = ids.map((id, i) => view(status(id, i, { schedule: i === 0 ? manual : scheduled })));
    const table = renderStatusTable(statusJson(null, views, NOW), "mqtt://b", { wide: false });
    expect(table).toContain(`${ids[0]}: schedule weekly v3, manual pm-peak by @alice, held; next: -`);
    expect(table).toContain(`${ids[1]}: schedule weekly v3, day plan weekday; next: off-peak at`);
    const none = ids.map((id, i) => view(status(id, i, { schedule: null })));
    expect(renderStatusTable(statusJson(null, none, NOW), "mqtt://b", { wide: false })).not.toContain(
      "schedule",
    );
  });
});

describe("greenwave status --json", () => {
  it("carries the cycle as published, with the second of the cycle on the reader's clock", () => {
    const startedAt = new Date(NOW - 12_900).toISOString();
    const report = statusJson(
      null,
      [
        view(
          status("elm", 0, {
            mode: "transition",
            cycle: { stage: "side", startedAt, lengthMs: 100_000, offsetErrorMs: 14_100, inStep: false },
            clock: { state: "synchronised", source: "chrony", offsetMs: 2 },
          }),
        ),
        view(status("oak", 1, { mode: "flash", cycle: null })),
        view(status("pine", 2)),
        // The reader's clock behind the gateway's: never a negative second.
        view(
          status("cedar", 3, {
            cycle: {
              stage: "main",
              startedAt: new Date(NOW + 2_000).toISOString(),
              lengthMs: 80_000,
              offsetErrorMs: 0,
              inStep: true,
            },
          }),
        ),
      ],
      NOW,
    );
    const [elm, oak, pine, cedar] = report.intersections;
    expect(elm?.cycle).toEqual({
      stage: "side",
      second: 12,
      lengthMs: 100_000,
      startedAt,
      offsetErrorMs: 14_100,
      inStep: false,
    });
    expect(elm?.clock).toEqual({ state: "synchronised", source: "chrony", offsetMs: 2 });
    expect(oak?.cycle).toBeNull();
    expect(pine?.cycle).toBeNull();
    expect(pine?.release).toBeNull();
    expect(cedar?.cycle?.second).toBe(0);
    // The fields docs/protocol.md promises, in its order.
    expect(Object.keys(elm ?? {})).toEqual([
      "id",
      "corridor",
      "name",
      "online",
      "plan",
      "mode",
      "cycle",
      "fault",
      "lock",
      "lastTxn",
      "clock",
      "release",
      "schedule",
      "updatedAt",
    ]);
  });
});

describe("the offset error in words", () => {
  it("says late or early instead of a sign", () => {
    expect(describeOffsetError(38_100)).toBe("38.1 s late");
    expect(describeOffsetError(-21_700)).toBe("21.7 s early");
    expect(describeOffsetError(20)).toBe("0.0 s");
    expect(describeOffsetError(0)).toBe("0.0 s");
  });
});
