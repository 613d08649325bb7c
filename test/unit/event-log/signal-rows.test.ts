import { describe, expect, it } from "vitest";
import { signalRows } from "../../../gateway/core/event-log/signal-rows.js";
import type { Detector, Intersection } from "../../../gateway/core/model.js";

const detector = (over: Partial<Detector>): Detector => ({
  id: "d",
  kind: "vehicle",
  calls: [1],
  extends: [1],
  delayMs: 0,
  extendMs: 0,
  locking: true,
  failedRecall: "max",
  noActivityMs: 0,
  maxPresenceMs: 0,
  chatterPerMinute: 0,
  number: 1,
  ...over,
});

const elm: Intersection = {
  id: "elm",
  name: "elm",
  corridorId: "c",
  groups: [
    {
      id: "M",
      kind: "vehicle",
      minGoMs: 10_000,
      clearanceMs: 4000,
      redClearanceMs: 2000,
      scheduledFlash: "red",
    },
    {
      id: "S",
      kind: "vehicle",
      minGoMs: 7000,
      clearanceMs: 3500,
      redClearanceMs: 2000,
      scheduledFlash: "red",
    },
    {
      id: "PM",
      kind: "pedestrian",
      minGoMs: 7000,
      clearanceMs: 17_000,
      redClearanceMs: 0,
      scheduledFlash: "red",
    },
  ],
  permissive: [
    [false, false, false],
    [false, false, true],
    [false, true, false],
  ],
  startupFlashMs: 6000,
  startupAllRedMs: 4000,
  flashPeriodMs: 1100,
  monitor: { conflictMs: 300, redFailMs: 800, mismatchMs: 1000 },
  phases: [2, 4, 4],
  detectors: [
    detector({ id: "S-loops", number: 7 }),
    detector({ id: "PM-buttons", kind: "pedestrian", calls: [2], extends: [], number: 3 }),
  ],
};

const at = 1_790_000_000_049;

describe("the event-log rows of what the controller reports", () => {
  it("an actuated stage's end: 4, 5 or 6 for each vehicle phase, at 0.1 s", () => {
    const reasons = { "gap-out": 4, "max-out": 5, "force-off": 6 } as const;
    for (const [reason, code] of Object.entries(reasons)) {
      const rows = signalRows(
        elm,
        {
          type: "stage-terminated",
          planId: "p",
          stage: "side",
          reason: reason as keyof typeof reasons,
          groups: [1],
        },
        at,
      );
      expect(rows).toEqual([{ atMs: 1_790_000_000_000, code, param: 4 }]);
    }
  });

  it("detectors by kind and number: 81/82 for a loop, 89/90 for a push button", () => {
    expect(signalRows(elm, { type: "detector", detector: 0, on: true }, at)[0]).toMatchObject({
      code: 82,
      param: 7,
    });
    expect(signalRows(elm, { type: "detector", detector: 0, on: false }, at)[0]).toMatchObject({
      code: 81,
      param: 7,
    });
    expect(signalRows(elm, { type: "detector", detector: 1, on: true }, at)[0]).toMatchObject({
      code: 90,
      param: 3,
    });
    expect(signalRows(elm, { type: "detector", detector: 1, on: false }, at)[0]).toMatchObject({
      code: 89,
      param: 3,
    });
  });

  it("a failure by its diagnostic (85–88, buttons 91) and a restoration (83, buttons 92)", () => {
    const failed = (
      detectorIndex: number,
      reason: "no-reading" | "no-activity" | "max-presence" | "chatter",
    ) =>
      signalRows(
        elm,
        { type: "detector-failed", detector: detectorIndex, reason, recall: "max", message: "" },
        at,
      )[0]?.code;
    expect([
      failed(0, "no-reading"),
      failed(0, "no-activity"),
      failed(0, "max-presence"),
      failed(0, "chatter"),
    ]).toEqual([85, 86, 87, 88]);
    expect(failed(1, "chatter")).toBe(91);
    expect(signalRows(elm, { type: "detector-restored", detector: 0 }, at)[0]?.code).toBe(83);
    expect(signalRows(elm, { type: "detector-restored", detector: 1 }, at)[0]?.code).toBe(92);
  });

  it("writes nothing for other signals or an unknown detector", () => {
    expect(signalRows(elm, { type: "stage-start", planId: "p", stage: "side" }, at)).toEqual([]);
    expect(signalRows(elm, { type: "detector", detector: 9, on: true }, at)).toEqual([]);
  });
});
