import { afterEach, describe, expect, it, vi } from "vitest";
import { DropWatch } from "../../gateway/shell/drop-watch.js";
import { describeTickReport, type TickReport, TickWatch } from "../../gateway/shell/tick-watch.js";

describe("the tick watch", () => {
  const tick = (missedTicks: number, exchangeMs = 20, latenessMs = 0) => ({
    missedTicks,
    exchangeMs,
    latenessMs,
  });

  it("says the first miss at once, then at most once a period, and blames the bus when exchanges outlast a tick", () => {
    const reports: TickReport[] = [];
    const watch = new TickWatch(100, (r) => reports.push(r), 60_000);
    watch.record(0, tick(0));
    watch.record(100, tick(2, 250));
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ missedTicks: 2, cause: "bus", slowestExchangeMs: 250 });
    for (let t = 200; t < 60_000; t += 100) watch.record(t, tick(1, 150));
    expect(reports).toHaveLength(1);
    watch.record(60_200, tick(0));
    expect(reports).toHaveLength(2);
    expect(reports[1]?.missedTicks).toBeGreaterThan(500);
    expect(describeTickReport(reports[1] as TickReport, 100)).toContain(
      "the modules' bus cannot keep the tick rate",
    );
  });

  it("blames the event loop when ticks start late with quick exchanges", () => {
    const reports: TickReport[] = [];
    const watch = new TickWatch(100, (r) => reports.push(r));
    watch.record(0, tick(5, 10, 480));
    expect(reports[0]?.cause).toBe("event-loop");
    expect(describeTickReport(reports[0] as TickReport, 100)).toContain("event loop starved");
  });

  it("says nothing while no tick is missed", () => {
    const reports: TickReport[] = [];
    const watch = new TickWatch(100, (r) => reports.push(r), 1_000);
    for (let t = 0; t < 10_000; t += 100) watch.record(t, tick(0));
    expect(reports).toEqual([]);
  });
});

describe("the drop watch", () => {
  afterEach(() => vi.useRealTimers());

  it("reports the first drop at once and the rest of the period at its end, in one line, with bounded keys", () => {
    vi.useFakeTimers();
    let now = 0;
    const reports: Record<string, number>[] = [];
    const watch = new DropWatch(
      (s) => reports.push(s),
      () => now,
      10_000,
    );
    watch.count("corridor from elm: rate-limited");
    expect(reports).toEqual([{ "corridor from elm: rate-limited": 1 }]);
    for (let i = 0; i < 500; i++) watch.count(`corridor from s${i}: rate-limited`);
    expect(reports).toHaveLength(1);
    now = 10_000;
    vi.advanceTimersByTime(10_000);
    expect(reports).toHaveLength(2);
    expect(Object.keys(reports[1] as object).length).toBeLessThanOrEqual(65);
    expect(reports[1]?.other).toBe(500 - 64);
  });
});
