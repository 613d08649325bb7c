import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { compileIntersectionPlan, loadIntersectionSetup, loadPlan } from "../../gateway/config/load.js";
import { IN_STEP_TOLERANCE_MS } from "../../gateway/core/model.js";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { buildOnce } from "./cli.js";
import { cleanupProcesses, cli, dirs, startDemoCorridor, stop } from "./processes.js";

beforeAll(() => buildOnce(), 180_000);
afterEach(() => cleanupProcesses());

interface HistoryEntry {
  t: number;
  outputs: string;
}

const CYCLE_MS = 30_000;
/** Lamp changes happen on 100 ms ticks; the simulator stamps them when the write arrives. */
const TOLERANCE_MS = 300;

/** Onsets of M's green (channel 2) in a module's recorded history. */
function greenOnsets(history: readonly HistoryEntry[]): { start: number; end: number | null }[] {
  const spans: { start: number; end: number | null }[] = [];
  let on = false;
  for (const entry of history) {
    const green = entry.outputs[2] === "1";
    if (green && !on) spans.push({ start: entry.t, end: null });
    if (!green && on) (spans.at(-1) as { end: number | null }).end = entry.t;
    on = green;
  }
  return spans;
}

const phaseError = (t: number, phase: number) => {
  const e = (((t - phase) % CYCLE_MS) + CYCLE_MS) % CYCLE_MS;
  return Math.min(e, CYCLE_MS - e);
};

describe("greenwave plan push against the demo corridor, as processes", () => {
  it("every intersection enters the new plan at the agreed boundary (one still correcting: at its next, reported late), and converges to the new green wave", async () => {
    const { fixture, demo, broker } = await startDemoCorridor();
    const coordinatorDir = mkdtempSync(join(tmpdir(), "greenwave-push-"));
    dirs.push(coordinatorDir);
    const controls = new Map(
      [...demo.out.matchAll(/simulator\s+(x\d)\/io1 (http:\/\/\S+)\/state/g)].map((m) => [
        m[1] as string,
        m[2] as string,
      ]),
    );
    expect([...controls.keys()].sort()).toEqual(fixture.ids);
    const status = () => {
      const run = cli(["status", "--broker", broker, "--corridor", "test-corridor", "--json"]);
      return run.status === 0
        ? (JSON.parse(run.stdout) as {
            intersections: {
              id: string;
              mode: string;
              plan: { id: string };
              lastTxn: { lateByMs?: number } | null;
            }[];
          })
        : null;
    };
    // Pushed as soon as every gateway runs its plan, in step or still correcting its offset.
    await until("every gateway running the base plan", 60_000, () => {
      const s = status();
      return s &&
        s.intersections.length === 4 &&
        s.intersections.every((i) => i.mode === "coordinated" || i.mode === "transition")
        ? s
        : null;
    });

    // And until each has shown a main green of the base plan: a start-up enters the cycle where the clock
    // puts it, which may be the side stage, and the push would otherwise take effect before any.
    const historyOf = async (id: string) =>
      (
        (await (await fetch(`${controls.get(id)}/history`)).json()) as {
          entries: HistoryEntry[];
        }
      ).entries;
    const deadline = Date.now() + 2 * CYCLE_MS;
    for (const id of fixture.ids) {
      while (greenOnsets(await historyOf(id)).length === 0) {
        if (Date.now() > deadline) throw new Error(`${id} showed no main green within two cycles`);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }

    const push = cli([
      "plan",
      "push",
      "--corridor",
      fixture.corridor,
      "--plan",
      join(fixture.plans, "shifted.yaml"),
      "--broker",
      broker,
      "--as",
      "e2e",
      "--data-dir",
      coordinatorDir,
      "--lead-s",
      "3",
      "--json",
    ]);
    expect(push.status, push.stderr + push.stdout).toBe(0);
    const result = JSON.parse(push.stdout) as {
      outcome: string;
      activationAt: string;
      votes: { vote: string }[];
    };
    expect(result.outcome).toBe("committed");
    expect(result.votes.map((v) => v.vote)).toEqual(["yes", "yes", "yes", "yes"]);
    const activation = Date.parse(result.activationAt);
    expect(activation % CYCLE_MS).toBe(0);

    // Convergence takes at most the correction bound: an offset error of up to a cycle, corrected by at
    // most 20 % (lengthen) or 15 % (shorten) of the cycle per cycle.
    await until("the new plan coordinated everywhere", 300_000, () => {
      const s = status();
      return s?.intersections.every((i) => i.plan.id === "shifted" && i.mode === "coordinated") &&
        Date.now() > activation + 2 * CYCLE_MS
        ? s
        : null;
    });

    // "coordinated" is reported at the cycle start where the offset came in step: one more cycle makes
    // the last completed main green one that ran in step.
    await new Promise((resolve) => setTimeout(resolve, CYCLE_MS + 2000));

    // How late each switch fell after the agreed instant, as each gateway reports it (lastTxn.lateByMs).
    const final = status();
    expect(final, "the corridor's status").not.toBeNull();
    const lateness = new Map(
      (final?.intersections ?? []).map((i) => [i.id, i.lastTxn?.lateByMs ?? Number.NaN]),
    );

    for (const [index, id] of fixture.ids.entries()) {
      const history = await historyOf(id);
      const spans = greenOnsets(history);
      const setup = loadIntersectionSetup(join(fixture.dir, `${id}.yaml`));
      const phaseOf = (planName: string) => {
        const plan = compileIntersectionPlan(
          setup.intersection.intersection,
          loadPlan(join(fixture.plans, `${planName}.yaml`)),
          setup.corridor,
        );
        return plan.offsetMs - plan.referencePositionMs;
      };
      const before = spans.filter((s) => s.start < activation - TOLERANCE_MS);
      const after = spans.filter((s) => s.start >= activation - TOLERANCE_MS);
      expect(before.length, `${id} ran the base plan before`).toBeGreaterThan(0);
      // An intersection in step enters the new plan in the cycle that begins at the agreed boundary.
      // One pushed while still correcting its offset (the push does not wait for that) enters it at
      // its own next cycle boundary, at most one stretched cycle later, and says by how much.
      const late = lateness.get(id) ?? Number.NaN;
      expect(late, `${id} lateness reported`).toBeGreaterThan(-IN_STEP_TOLERANCE_MS - TOLERANCE_MS);
      expect(late, `${id} lateness`).toBeLessThan(1.2 * CYCLE_MS);
      const first = after[0];
      expect(first, `${id} switched`).toBeDefined();
      expect((first?.start ?? 0) - activation, `${id} switch`).toBeLessThan(
        Math.max(0, late) + CYCLE_MS + TOLERANCE_MS,
      );
      // Then it converges: the last cycles sit on the new green wave, with the new 14 s main green.
      const last = after.filter((s) => s.end !== null).at(-1);
      // "In step" means within the sequencer's tolerance, where offset correction stops.
      expect(phaseError(last?.start ?? 0, phaseOf("shifted")), `${id} new phase`).toBeLessThan(
        IN_STEP_TOLERANCE_MS + TOLERANCE_MS,
      );
      expect(((last?.end ?? 0) - (last?.start ?? 0)) / 1000).toBeCloseTo(14, 0);
      // The green wave itself: each intersection's main green starts 5 s after its upstream neighbour's.
      if (index > 0) expect(phaseOf("shifted") - phaseOf("base")).toBe(index * 2000);
    }
    expect(await stop(demo)).toBe(0);
  }, 480_000);
});
