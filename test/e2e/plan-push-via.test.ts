import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { buildOnce } from "./cli.js";
import { cleanupProcesses, cli, startDemoCorridor, stop } from "./processes.js";

beforeAll(() => buildOnce(), 180_000);
afterEach(() => cleanupProcesses());

describe("greenwave plan push --via: a gateway of the demo corridor coordinates", () => {
  it("commits through x2's gateway, which every intersection then reports", async () => {
    const { fixture, demo, broker } = await startDemoCorridor();
    const push = cli([
      "plan",
      "push",
      "--corridor",
      fixture.corridor,
      "--plan",
      join(fixture.plans, "next.yaml"),
      "--broker",
      broker,
      "--as",
      "e2e",
      "--via",
      "x2",
      "--lead-s",
      "3",
      "--json",
    ]);
    expect(push.status, push.stderr + push.stdout).toBe(0);
    const result = JSON.parse(push.stdout) as { txnId: string; outcome: string; votes: { vote: string }[] };
    expect(result.outcome).toBe("committed");
    expect(result.txnId.startsWith("x2-")).toBe(true);
    expect(result.votes.map((v) => v.vote)).toEqual(["yes", "yes", "yes", "yes"]);
    const status = await until("every intersection reporting the transaction", 10_000, () => {
      const run = cli(["status", "--broker", broker, "--corridor", "test-corridor", "--json"]);
      if (run.status !== 0) return null;
      const s = JSON.parse(run.stdout) as { intersections: { lastTxn?: { id: string; outcome: string } }[] };
      return s.intersections.length === 4 && s.intersections.every((i) => i.lastTxn?.id === result.txnId)
        ? s
        : null;
    });
    for (const i of status.intersections) expect(i.lastTxn?.outcome).toBe("committed");

    // A plan for another corridor is refused before anything is sent, saying which corridor it is for.
    const wrong = cli([
      "plan",
      "push",
      "--corridor",
      fixture.corridor,
      "--plan",
      "config/plans/am-peak.yaml",
      "--broker",
      broker,
      "--via",
      "x2",
    ]);
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toContain("main-street");
    expect(await stop(demo)).toBe(0);
  }, 120_000);

  it("schedule push --via: a gateway coordinates the schedule's commit, which every intersection then runs by", async () => {
    const { fixture, demo, broker } = await startDemoCorridor();
    const schedule = join(fixture.dir, "schedule.yaml");
    writeFileSync(
      schedule,
      `kind: schedule
id: every-day
version: 1
corridor: test-corridor
dayPlans:
  day:
    - { at: "00:00", action: next }
calendar:
  - { weekdays: [mon, tue, wed, thu, fri, sat, sun], dayPlan: day }
`,
    );
    const push = cli([
      "schedule",
      "push",
      "--schedule",
      schedule,
      "--corridor",
      fixture.corridor,
      "--broker",
      broker,
      "--as",
      "e2e",
      "--via",
      "x3",
      "--lead-s",
      "3",
      "--json",
    ]);
    expect(push.status, push.stderr + push.stdout).toBe(0);
    const result = JSON.parse(push.stdout) as {
      txnId: string;
      outcome: string;
      plan: { id: string; kind?: string };
      votes: { vote: string }[];
    };
    expect(result).toMatchObject({ outcome: "committed", plan: { id: "every-day", kind: "schedule" } });
    expect(result.txnId.startsWith("x3-")).toBe(true);
    expect(result.votes.map((v) => v.vote)).toEqual(["yes", "yes", "yes", "yes"]);
    // Every intersection runs by it: the plan it has in force all day, from the next common boundary.
    // The plan takes effect at the first common boundary after the push, then at each intersection's own
    // first cycle start after it (40 s cycles): up to two cycles, more on a loaded machine.
    await until("every intersection to run the scheduled plan", 150_000, () => {
      const run = cli(["status", "--broker", broker, "--corridor", "test-corridor", "--json"]);
      if (run.status !== 0) return null;
      const s = JSON.parse(run.stdout) as {
        intersections: { plan?: { id: string }; schedule?: { id: string; reason: string; action: string } }[];
      };
      return s.intersections.length === 4 &&
        s.intersections.every(
          (i) => i.schedule?.id === "every-day" && i.schedule.reason === "scheduled" && i.plan?.id === "next",
        )
        ? s
        : null;
    });
    expect(await stop(demo)).toBe(0);
  }, 240_000);
});
