import { describe, expect, it } from "vitest";
import {
  CHATTER_WINDOW_MS,
  type DetectorBankState,
  type DetectorEvent,
  type DetectorStep,
  type GroupDemand,
  NO_READING_MS,
  startDetectors,
  stepDetectors,
} from "../../gateway/core/detectors.js";
import type { Detector, Intersection } from "../../gateway/core/model.js";

/**
 * The detector machine (core/detectors.ts) on its own: readings in, each group's demand and the
 * detector events out. Groups as at elm: M 0, S 1 (vehicles), PS 2, PM 3 (walks).
 */

const M = 0;
const S = 1;
const PM = 3;

function spec(d: Partial<Detector> = {}): Detector {
  return {
    id: "S-loops",
    kind: "vehicle",
    calls: [S],
    extends: [S],
    delayMs: 0,
    extendMs: 0,
    locking: false,
    failedRecall: "max",
    noActivityMs: 0,
    maxPresenceMs: 0,
    chatterPerMinute: 0,
    number: 1,
    ...d,
  };
}

function bank(...detectors: Detector[]): Intersection {
  return {
    id: "elm",
    name: "Main St & Elm Ave",
    corridorId: "main-street",
    groups: [
      {
        id: "M",
        kind: "vehicle",
        minGoMs: 10_000,
        clearanceMs: 4000,
        redClearanceMs: 2000,
        scheduledFlash: "yellow",
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
        id: "PS",
        kind: "pedestrian",
        minGoMs: 7000,
        clearanceMs: 10_000,
        redClearanceMs: 0,
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
      [false, false, true, false],
      [false, false, false, true],
      [true, false, false, false],
      [false, true, false, false],
    ],
    startupFlashMs: 6000,
    startupAllRedMs: 4000,
    flashPeriodMs: 1091,
    monitor: { conflictMs: 300, redFailMs: 800, mismatchMs: 1000 },
    detectors,
  };
}

const NONE_GREEN = [false, false, false, false];
const S_GREEN = [false, true, false, false];

/** Steps a bank through readings at 100 ms, keeping what each step gave. */
class Bench {
  state: DetectorBankState;
  t: number;
  last: DetectorStep | null = null;
  readonly events: { t: number; event: DetectorEvent }[] = [];

  constructor(
    readonly x: Intersection,
    t0 = 1_000_000,
  ) {
    this.t = t0;
    this.state = startDetectors(x, t0);
  }

  /** One reading of every detector at `t` (by default 100 ms after the last). */
  read(readings: readonly (boolean | null)[], green = NONE_GREEN, t = this.t + 100): DetectorStep {
    this.t = t;
    const step = stepDetectors(this.x, this.state, readings, green, t);
    this.state = step.state;
    this.last = step;
    for (const event of step.events) this.events.push({ t, event });
    return step;
  }

  /** The same readings every 100 ms until `t` (inclusive); returns the demand of group g at each. */
  hold(
    readings: readonly (boolean | null)[],
    until: number,
    green = NONE_GREEN,
    g = S,
  ): { t: number; d: GroupDemand }[] {
    const out: { t: number; d: GroupDemand }[] = [];
    while (this.t + 100 <= until) {
      const step = this.read(readings, green);
      out.push({ t: this.t, d: step.demand[g] as GroupDemand });
    }
    return out;
  }

  demand(g = S): GroupDemand {
    return this.last?.demand[g] as GroupDemand;
  }
}

describe("calls and extensions", () => {
  it("gives no demand while the input is off, and a call and an extension at the first reading on (delay 0)", () => {
    const b = new Bench(bank(spec()));
    b.read([false]);
    expect(b.last?.demand).toEqual([0, 1, 2, 3].map(() => ({ call: false, extend: false, recall: "none" })));
    b.read([true]);
    expect(b.demand()).toEqual({ call: true, extend: true, recall: "none" });
    expect(b.demand(M)).toEqual({ call: false, extend: false, recall: "none" });
    expect(b.events).toEqual([{ t: b.t, event: { type: "detector", detector: 0, on: true } }]);
  });

  it("reports each change of the input as a detector event, and only changes", () => {
    const b = new Bench(bank(spec()));
    for (const r of [false, true, true, false, false, true]) b.read([r]);
    expect(b.events.map((e) => e.event)).toEqual([
      { type: "detector", detector: 0, on: true },
      { type: "detector", detector: 0, on: false },
      { type: "detector", detector: 0, on: true },
    ]);
  });

  it("calls only once the input has been on for its delay; an input that leaves sooner never calls", () => {
    const b = new Bench(bank(spec({ delayMs: 3000 })));
    const on = b.t + 100;
    // A right-turner: on for 2 s, gone.
    const short = b.hold([true], on + 2000);
    expect(short.every((s) => !s.d.call)).toBe(true);
    // The extension is not delayed: it extends from the first reading.
    expect(short.every((s) => s.d.extend)).toBe(true);
    b.hold([false], b.t + 1000);
    expect(b.demand().call).toBe(false);
    // A vehicle that waits: calls at exactly 3 s after it came.
    const came = b.t + 100;
    const waits = b.hold([true], came + 5000);
    expect(waits.find((s) => s.d.call)?.t).toBe(came + 3000);
  });

  it("times the delay only while its group is not green: a vehicle on since the green calls its delay after the green ends", () => {
    // docs/detectors.md: "The input must stay on this long before it calls, while its group is not green."
    const b = new Bench(bank(spec({ delayMs: 3000 })));
    b.hold([true], b.t + 10_000, S_GREEN); // on through S's green
    const greenEnds = b.t + 100;
    const after = b.hold([true], greenEnds + 5000);
    expect(after.find((s) => s.d.call)?.t).toBe(greenEnds + 3000);
  });

  it("extends while the input is on and for its carry-over after, green or not", () => {
    const b = new Bench(bank(spec({ extendMs: 1500 })));
    const whileOn = b.hold([true], b.t + 2000, S_GREEN);
    expect(whileOn.every((s) => s.d.extend)).toBe(true);
    const off = b.t + 100;
    const carry = b.hold([false], off + 3000, S_GREEN);
    // Off at `off`: still extending for 1.5 s after, no longer from then on.
    expect(carry.filter((s) => s.d.extend).map((s) => s.t)).toEqual(
      Array.from({ length: 15 }, (_, i) => off + i * 100),
    );
    expect(carry.find((s) => !s.d.extend)?.t).toBe(off + 1500);
  });

  it("extends only the groups it extends, and calls only the groups it calls", () => {
    const b = new Bench(bank(spec({ calls: [S], extends: [M] })));
    const step = b.read([true]);
    expect(step.demand[S]).toEqual({ call: true, extend: false, recall: "none" });
    expect(step.demand[M]).toEqual({ call: false, extend: true, recall: "none" });
  });

  it("non-locking: the call lasts only while the input is on, and is not placed while the group is green", () => {
    const b = new Bench(bank(spec({ locking: false })));
    expect(b.read([true]).demand[S]?.call).toBe(true);
    expect(b.read([false]).demand[S]?.call).toBe(false);
    // On during S's green: no call (the green serves it), though it extends.
    expect(b.read([true], S_GREEN).demand[S]).toEqual({ call: false, extend: true, recall: "none" });
    // Still on when the green ends: it calls again.
    expect(b.read([true]).demand[S]?.call).toBe(true);
  });

  it("locking: the call stays after the vehicle left, until the group's green starts, and is not placed during the green", () => {
    const b = new Bench(bank(spec({ locking: true })));
    b.read([true]);
    const left = b.hold([false], b.t + 30_000);
    expect(left.every((s) => s.d.call)).toBe(true);
    // Served: the green clears the locked call at once.
    expect(b.read([false], S_GREEN).demand[S]?.call).toBe(false);
    expect(b.read([false]).demand[S]?.call).toBe(false);
    // A vehicle that comes and goes during the green leaves no call behind.
    b.read([true], S_GREEN);
    b.read([false], S_GREEN);
    expect(b.read([false]).demand[S]?.call).toBe(false);
  });

  it("a push button calls its walk and extends nothing", () => {
    const b = new Bench(
      bank(spec({ id: "PB", kind: "pedestrian", calls: [PM], extends: [], locking: true })),
    );
    b.read([true]);
    b.read([false]);
    expect(b.demand(PM)).toEqual({ call: true, extend: false, recall: "none" });
    expect(b.demand(S)).toEqual({ call: false, extend: false, recall: "none" });
  });

  it("refuses readings that do not match the detectors", () => {
    const b = new Bench(bank(spec(), spec({ id: "two", number: 2 })));
    expect(() => b.read([true])).toThrow(/1 detector readings for 2 detectors/);
  });
});

describe("diagnostics", () => {
  it("no reading for NO_READING_MS fails the detector (its groups on its recall, its input ignored); the next reading restores it", () => {
    const b = new Bench(bank(spec({ failedRecall: "min" })));
    b.read([true]); // the input on: a call
    const lastReading = b.t;
    const silent = b.hold([null], lastReading + NO_READING_MS + 500);
    // Until the window ends the last state holds: on, calling and extending.
    const before = silent.filter((s) => s.t < lastReading + NO_READING_MS);
    expect(before.every((s) => s.d.call && s.d.extend && s.d.recall === "none")).toBe(true);
    const failedAt = lastReading + NO_READING_MS;
    expect(b.events.filter((e) => e.event.type === "detector-failed")).toEqual([
      {
        t: failedAt,
        event: {
          type: "detector-failed",
          detector: 0,
          reason: "no-reading",
          recall: "min",
          message: expect.stringMatching(
            /^detector S-loops at elm failed: no reading for 2 s .*groups S are on min recall/,
          ),
        },
      },
    ]);
    // Failed: recall only; its input neither calls nor extends.
    for (const s of silent.filter((s) => s.t >= failedAt))
      expect(s.d).toEqual({ call: false, extend: false, recall: "min" });
    expect(b.state.detectors[0]?.failure).toEqual({ reason: "no-reading", sinceMs: failedAt });
    // A reading comes: restored, and its input counts again.
    b.read([false]);
    expect(b.events.at(-1)).toEqual({ t: b.t, event: { type: "detector-restored", detector: 0 } });
    expect(b.demand().recall).toBe("none");
    expect(b.state.detectors[0]?.failure).toBeNull();
  });

  it("more on-transitions than chatterPerMinute within a minute fail it; it is restored only after a minute with at most half the limit", () => {
    const b = new Bench(bank(spec({ chatterPerMinute: 10 })));
    let failedAt: number | null = null;
    // Flipping every reading: an on-transition every 200 ms; the 11th fails it.
    const start = b.t + 100;
    for (let i = 0; i < 100 && failedAt === null; i++) {
      b.read([i % 2 === 0]);
      if (b.events.some((e) => e.event.type === "detector-failed")) failedAt = b.t;
    }
    expect(failedAt).toBe(start + 10 * 200);
    expect(b.events.find((e) => e.event.type === "detector-failed")?.event).toMatchObject({
      reason: "chatter",
      recall: "max",
    });
    expect(b.demand()).toEqual({ call: false, extend: false, recall: "max" });
    // Quiet again at once: still failed for a whole minute after the failure (hysteresis)...
    const quiet = b.hold([false], (failedAt as number) + CHATTER_WINDOW_MS - 100);
    expect(quiet.every((s) => s.d.recall === "max")).toBe(true);
    // ...then restored, the minute holding no more than half the limit.
    b.read([false]);
    expect(b.t).toBe((failedAt as number) + CHATTER_WINDOW_MS);
    expect(b.events.at(-1)?.event).toEqual({ type: "detector-restored", detector: 0 });
  });

  it("stays failed while the input chatters above half the limit (hysteresis), and is restored once it chatters at half the limit or less", () => {
    const b = new Bench(bank(spec({ chatterPerMinute: 10 })));
    for (let i = 0; i < 22; i++) b.read([i % 2 === 0]); // 11 onsets: failed
    expect(b.state.detectors[0]?.failure?.reason).toBe("chatter");
    const pulse = () => {
      b.read([true]);
      b.read([false]);
    };
    // Six on-transitions a minute (> 10 / 2) for three minutes: still failed.
    for (let minute = 0; minute < 3; minute++)
      for (let k = 0; k < 6; k++) {
        pulse();
        b.hold([false], b.t + 10_000 - 200);
      }
    expect(b.events.filter((e) => e.event.type === "detector-restored")).toEqual([]);
    // Five a minute (= 10 / 2): restored within the next minute.
    for (let k = 0; k < 6; k++) {
      pulse();
      b.hold([false], b.t + 12_000 - 200);
    }
    expect(b.events.filter((e) => e.event.type === "detector-restored")).toHaveLength(1);
  });

  it("a chattering detector that keeps chattering stays failed", () => {
    const b = new Bench(bank(spec({ chatterPerMinute: 20 })));
    for (let i = 0; i < 5 * 600; i++) b.read([i % 2 === 0]);
    expect(b.events.filter((e) => e.event.type === "detector-failed")).toHaveLength(1);
    expect(b.events.filter((e) => e.event.type === "detector-restored")).toHaveLength(0);
  });

  it("on without a break for maxPresenceMs fails it; restored when the input goes off", () => {
    const b = new Bench(bank(spec({ maxPresenceMs: 30_000, failedRecall: "max" })));
    const on = b.t + 100;
    const held = b.hold([true], on + 31_000);
    expect(held.find((s) => s.d.recall === "max")?.t).toBe(on + 30_000);
    expect(held.filter((s) => s.t < on + 30_000).every((s) => s.d.call && s.d.recall === "none")).toBe(true);
    expect(b.events.find((e) => e.event.type === "detector-failed")?.event).toMatchObject({
      reason: "max-presence",
    });
    b.read([false]);
    expect(b.events.at(-1)?.event).toEqual({ type: "detector-restored", detector: 0 });
    expect(b.demand()).toEqual({ call: false, extend: false, recall: "none" });
  });

  it("a break in the presence starts its count again", () => {
    const b = new Bench(bank(spec({ maxPresenceMs: 30_000 })));
    b.hold([true], b.t + 25_000);
    b.read([false]);
    b.hold([true], b.t + 25_000);
    expect(b.events.some((e) => e.event.type === "detector-failed")).toBe(false);
  });

  it("no on-transition for noActivityMs fails it (counted from the start); the next vehicle restores it", () => {
    const t0 = 1_000_000;
    const b = new Bench(bank(spec({ noActivityMs: 60_000, failedRecall: "min" })), t0);
    const quiet = b.hold([false], t0 + 61_000);
    expect(quiet.find((s) => s.d.recall === "min")?.t).toBe(t0 + 60_000);
    expect(b.events.find((e) => e.event.type === "detector-failed")?.event).toMatchObject({
      reason: "no-activity",
    });
    b.read([true]);
    expect(b.events.at(-1)?.event).toEqual({ type: "detector-restored", detector: 0 });
    // Restored at the very reading that came on: it calls at once.
    expect(b.demand()).toEqual({ call: true, extend: true, recall: "none" });
  });

  it("an input that stays on is activity enough for no-activity only until its presence is too long", () => {
    const t0 = 1_000_000;
    const b = new Bench(bank(spec({ noActivityMs: 60_000 })), t0);
    b.read([true]);
    b.hold([true], t0 + 120_000);
    // On since the start: no on-transition for two minutes, but it is on, not dead.
    expect(b.events.some((e) => e.event.type === "detector-failed")).toBe(false);
  });

  it("a group called by two failed detectors goes to the stronger recall", () => {
    const b = new Bench(
      bank(
        spec({ id: "a", failedRecall: "min", number: 1 }),
        spec({ id: "b", failedRecall: "max", number: 2 }),
        spec({ id: "c", failedRecall: "min", calls: [M], extends: [M], number: 3 }),
      ),
    );
    b.hold([null, null, null], b.t + NO_READING_MS + 100);
    expect(b.demand(S).recall).toBe("max");
    expect(b.demand(M).recall).toBe("min");
  });

  it("keeps at most chatterPerMinute + 1 onsets (one without a chatter check), however long the input chatters", () => {
    for (const limit of [0, 1, 20, 120]) {
      const b = new Bench(bank(spec({ chatterPerMinute: limit })));
      for (let i = 0; i < 10 * 600; i++) {
        b.read([i % 2 === 0]);
        const onsets = b.state.detectors[0]?.onsets ?? [];
        expect(onsets.length).toBeLessThanOrEqual(Math.max(1, limit + 1));
        // Oldest first; at an on-transition, all within the last minute.
        expect(onsets.every((at, k) => k === 0 || at > (onsets[k - 1] as number))).toBe(true);
        if (i % 2 === 0) expect(onsets.every((at) => b.t - at < CHATTER_WINDOW_MS)).toBe(true);
      }
      if (limit === 0) expect(b.events.some((e) => e.event.type === "detector-failed")).toBe(false);
    }
  });
});
