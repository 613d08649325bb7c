import { describe, expect, it } from "vitest";
import { describeCycleStart } from "../../gateway/cli/demo-display.js";
import { humanLogDestination, humanLogLine } from "../../gateway/cli/demo-log.js";
import { createLogger } from "../../gateway/shell/log.js";

const cycle = (offsetErrorMs: number, correctionMs: number) =>
  ({ type: "cycle-start", planId: "off-peak", offsetErrorMs, correctionMs }) as const;

describe("the demo's cycle-start line", () => {
  it("says late or early, the offset error's sign (as greenwave_offset_error_seconds has it) and what the correction does", () => {
    // The lines a first-time user could not read: 38.1 s late with a 20 s correction, then -21.7 s.
    expect(describeCycleStart(cycle(38_100, 20_000), 80_000)).toBe(
      "cycle of off-peak started 38.1 s late (offset error +38.1 s): lengthening it by 20.0 s to wait for the offset point 41.9 s ahead; 21.9 s left for the next cycles",
    );
    expect(describeCycleStart(cycle(-21_700, 20_000), 80_000)).toBe(
      "cycle of off-peak started 21.7 s early (offset error -21.7 s): lengthening it by 20.0 s to wait for the offset point 21.7 s ahead; 1.7 s left for the next cycles",
    );
    expect(describeCycleStart(cycle(25_100, -9_600), 80_000)).toBe(
      "cycle of off-peak started 25.1 s late (offset error +25.1 s): shortening it by 9.6 s to catch up with the offset point 25.1 s behind; 15.5 s left for the next cycles",
    );
    expect(describeCycleStart(cycle(-7_000, 7_000), 80_000)).toBe(
      "cycle of off-peak started 7.0 s early (offset error -7.0 s): lengthening it by 7.0 s to wait for the offset point 7.0 s ahead; in step from the next cycle",
    );
    // Early, but the short way round is to catch up with the point a cycle less behind.
    expect(describeCycleStart(cycle(-30_000, -9_600), 80_000)).toContain(
      "shortening it by 9.6 s to catch up with the offset point 50.0 s behind; 40.4 s left",
    );
  });

  it("says when the error is within the in-step tolerance, and nothing when there is none", () => {
    expect(describeCycleStart(cycle(300, -300), 80_000)).toBe(
      "cycle of off-peak started 0.3 s late (offset error +0.3 s, in step): shortening it by 0.3 s",
    );
    expect(describeCycleStart(cycle(-20, 20), 80_000)).toBe(
      "cycle of off-peak started on time (offset error 0.0 s, in step): lengthening it by 0.0 s",
    );
    expect(describeCycleStart(cycle(0, 0), 80_000)).toBeNull();
    // Without the cycle length: what it does, not how far is left.
    expect(describeCycleStart(cycle(14_100, 20_000), null)).toBe(
      "cycle of off-peak started 14.1 s late (offset error +14.1 s): lengthening it by 20.0 s",
    );
  });
});

describe("the demo's console: gateway logs as one human line each", () => {
  it("turns what pino writes into the demo's timeline, one line per entry, however the entry is shaped", () => {
    const printed: string[] = [];
    const log = createLogger(
      "greenwave-demo",
      "info",
      humanLogDestination(
        (l) => printed.push(l),
        () => "   12.3s",
        5,
      ),
    );
    log.child({ intersection: "elm" }).warn({ missedTicks: 2, cause: "bus" }, "2 ticks of 100 ms missed");
    log
      .child({ intersection: "oak" })
      .error({ err: new Error("disk full\n  at write") }, "cannot store\nthe latch");
    log.info("demo log");
    log.debug("not at info level");
    expect(printed).toEqual([
      "   12.3s elm   WARN  2 ticks of 100 ms missed  [missedTicks=2 cause=bus]",
      expect.stringMatching(
        /^ {3}12\.3s oak {3}ERROR cannot store the latch {2}\[err=\{"type":"Error","message":"disk full\\n {2}at write","stack":".*"\}\]$/,
      ),
      "   12.3s demo  INFO  demo log",
    ]);
    for (const line of printed) {
      expect(line).not.toContain("\n");
      expect(line.trimStart()).not.toMatch(/^\{/);
    }
  });

  it("passes a line that is not a JSON object through, on one line", () => {
    expect(humanLogLine("not json\nat all", "    1.0s", 5)).toBe("    1.0s not json at all");
    expect(humanLogLine("[1,2]", "    1.0s", 5)).toBe("    1.0s [1,2]");
  });
});
