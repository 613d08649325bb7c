import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  INITIAL_SERVICE_WATCHDOG,
  type ServiceWatchdogConfig,
  type ServiceWatchdogEvent,
  type ServiceWatchdogState,
  stepServiceWatchdog,
} from "../../gateway/core/service-watchdog.js";

const config: ServiceWatchdogConfig = { staleAfterMs: 1000, watchdogMs: 4000 };

function run(events: readonly { event: ServiceWatchdogEvent; at: number }[], cfg = config) {
  let state: ServiceWatchdogState = INITIAL_SERVICE_WATCHDOG;
  const sent: { message: string; at: number }[] = [];
  for (const { event, at } of events) {
    const step = stepServiceWatchdog(cfg, state, event, at);
    state = step.state;
    for (const effect of step.effects)
      if (effect.type === "notify") sent.push({ message: effect.message, at });
  }
  return { state, sent };
}

const eventArb: fc.Arbitrary<ServiceWatchdogEvent> = fc.oneof(
  fc.constantFrom<boolean | null>(true, false, null).map((answered) => ({ type: "tick" as const, answered })),
  fc.constant({ type: "check" as const }),
  fc.constant({ type: "stopping" as const }),
  fc.string({ maxLength: 300 }).map((text) => ({ type: "status" as const, text })),
);

/** Events at non-decreasing instants, with gaps up to 3 s (stalls included). */
const timelineArb = fc
  .array(fc.tuple(eventArb, fc.integer({ min: 0, max: 3000 })), { maxLength: 200 })
  .map((steps) => {
    let at = 0;
    return steps.map(([event, gap]) => ({ event, at: (at += gap) }));
  });

describe("the service watchdog (what the gateway tells systemd)", () => {
  it("is READY only after a tick in which every module answered, and then never again", () => {
    const notAnswered = run([{ event: { type: "tick", answered: false }, at: 100 }]);
    expect(notAnswered.sent).toEqual([]);
    const answered = run([
      { event: { type: "tick", answered: false }, at: 100 },
      { event: { type: "tick", answered: true }, at: 200 },
      { event: { type: "tick", answered: true }, at: 300 },
    ]);
    expect(answered.sent).toEqual([{ message: "READY=1", at: 200 }]);
  });

  it("property: a ping is sent only when a tick finished, and every module answered, within the stale bound", () => {
    fc.assert(
      fc.property(timelineArb, (timeline) => {
        let lastTick: number | null = null;
        let lastAnswered: number | null = null;
        let readyAt: number | null = null;
        let state: ServiceWatchdogState = INITIAL_SERVICE_WATCHDOG;
        let readies = 0;
        for (const { event, at } of timeline) {
          const step = stepServiceWatchdog(config, state, event, at);
          state = step.state;
          for (const effect of step.effects) {
            if (effect.type !== "notify") continue;
            if (effect.message === "READY=1") {
              readies++;
              readyAt = at;
            }
            if (effect.message === "WATCHDOG=1") {
              expect(readyAt, "ping before READY").not.toBeNull();
              expect(lastTick).not.toBeNull();
              expect(at - (lastTick as number)).toBeLessThanOrEqual(config.staleAfterMs);
              expect(lastAnswered).not.toBeNull();
              expect(at - (lastAnswered as number)).toBeLessThanOrEqual(config.staleAfterMs);
            }
            if (effect.message.startsWith("STATUS="))
              expect(effect.message.length).toBeLessThanOrEqual("STATUS=".length + 200);
          }
          if (event.type === "tick") {
            lastTick = at;
            if (event.answered !== false) lastAnswered = at;
          }
        }
        expect(readies).toBeLessThanOrEqual(1);
      }),
    );
  });

  it("property: a healthy loop (answered ticks every 100 ms) is pinged at every check, once ready", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 50 }), (checks) => {
        const timeline: { event: ServiceWatchdogEvent; at: number }[] = [];
        for (let t = 0; t <= checks * 1000; t += 100) {
          timeline.push({ event: { type: "tick", answered: true }, at: t });
          if (t > 0 && t % 1000 === 0) timeline.push({ event: { type: "check" }, at: t });
        }
        const pings = run(timeline).sent.filter((s) => s.message === "WATCHDOG=1");
        expect(pings.length).toBe(checks);
      }),
    );
  });

  it("withholds the ping for a stuck tick and for a dead bus, says so once, and resumes", () => {
    const timeline: { event: ServiceWatchdogEvent; at: number }[] = [
      { event: { type: "tick", answered: true }, at: 0 },
      { event: { type: "check" }, at: 500 },
      // stuck: no tick for 1.5 s
      { event: { type: "check" }, at: 1500 },
      { event: { type: "check" }, at: 1600 },
      { event: { type: "tick", answered: false }, at: 1700 },
      { event: { type: "check" }, at: 1800 }, // ticking again, but the module has not answered since 0
      { event: { type: "tick", answered: true }, at: 1900 },
      { event: { type: "check" }, at: 2000 },
    ];
    let state: ServiceWatchdogState = INITIAL_SERVICE_WATCHDOG;
    const log: string[] = [];
    const pings: number[] = [];
    for (const { event, at } of timeline) {
      const step = stepServiceWatchdog(config, state, event, at);
      state = step.state;
      for (const effect of step.effects) {
        if (effect.type === "log") log.push(effect.message);
        else if (effect.message === "WATCHDOG=1") pings.push(at);
      }
    }
    expect(pings).toEqual([500, 2000]);
    expect(log.filter((l) => l.startsWith("watchdog ping withheld"))).toHaveLength(1);
    expect(log.find((l) => l.includes("stuck tick"))).toBeDefined();
    expect(log.at(-1)).toMatch(/resumed/);
  });

  it("without a watchdog period sends READY, STATUS and STOPPING but never pings; STOPPING once", () => {
    const { sent } = run(
      [
        { event: { type: "tick", answered: null }, at: 0 },
        { event: { type: "status", text: "startup,\nplan p v1" }, at: 1 },
        { event: { type: "status", text: "startup,\nplan p v1" }, at: 2 },
        { event: { type: "check" }, at: 3 },
        { event: { type: "stopping" }, at: 4 },
        { event: { type: "stopping" }, at: 5 },
      ],
      { staleAfterMs: 1000, watchdogMs: null },
    );
    expect(sent.map((s) => s.message)).toEqual(["READY=1", "STATUS=startup, plan p v1", "STOPPING=1"]);
  });
});
