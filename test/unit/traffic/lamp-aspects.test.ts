import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Aspect } from "../../../gateway/core/model.js";
import { readAspects, startLampWatch } from "../../../simulators/traffic/lamp-aspects.js";
import { VirtualIntersection } from "../../support/drive.js";
import { setupArb } from "../../support/random-signal.js";

const GO: ReadonlySet<Aspect> = new Set(["green", "walk"]);

describe("aspects read back from lamps (the live demo's view of a module's relays)", () => {
  it("for any intersection and plan, through start-up flash, operator flash and plan changes: a green or walk is read exactly when the controller shows one, and every other aspect within 1.5 flash periods of its start", () => {
    fc.assert(
      fc.property(
        setupArb,
        fc.integer({ min: 0, max: 10_000 }),
        ({ intersection, planA, planB }, startMs) => {
          const v = new VirtualIntersection(intersection, planA, {
            monoMs: startMs,
            wallMs: Date.UTC(2026, 11, 1),
          });
          let watch = startLampWatch(intersection);
          const changedAt = intersection.groups.map(() => Number.NEGATIVE_INFINITY);
          let previous: readonly Aspect[] = [];
          const ticks = Math.ceil(
            (intersection.startupFlashMs + intersection.startupAllRedMs + 3 * planA.cycleMs) / 100,
          );
          for (let t = 0; t < ticks; t++) {
            if (t === Math.floor(ticks / 3)) v.dispatch({ type: "enter-flash" });
            if (t === Math.floor(ticks / 2)) v.dispatch({ type: "leave-flash" });
            if (t === Math.floor((2 * ticks) / 3))
              v.dispatch({
                type: "schedule-plan",
                plan: { ...planB, version: 9 },
                activationWallMs: v.wallMs,
              });
            v.tick(100);
            const read = readAspects(intersection, watch, v.lastLamps, v.monoMs);
            watch = read.watch;
            intersection.groups.forEach((_, i) => {
              const shown = v.lastAspects[i] as Aspect;
              if (shown !== previous[i]) changedAt[i] = v.monoMs;
              const seen = read.aspects[i] as Aspect;
              // Safety: SUMO must never let traffic go on a light the controller does not show as go.
              expect(GO.has(seen), `group ${i} at ${v.monoMs}: controller ${shown}, read ${seen}`).toBe(
                GO.has(shown),
              );
              if (v.monoMs - (changedAt[i] as number) > intersection.flashPeriodMs * 1.5)
                expect(seen, `group ${i} at ${v.monoMs}`).toBe(shown);
            });
            previous = v.lastAspects;
          }
        },
      ),
      { numRuns: 30 },
    );
  });
});
