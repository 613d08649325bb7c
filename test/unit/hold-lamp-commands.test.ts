import { describe, expect, it } from "vitest";
import {
  type CommandContext,
  decideCommand,
  describeDuration,
  type SignalContext,
} from "../../gateway/node/commands.js";
import { DEFAULT_HOLD_MS } from "../../gateway/core/sequencer.js";
import { parseCommand } from "../../gateway/protocol/messages.js";
import { parseDuration } from "../../gateway/cli/duration-text.js";
import { holdDuration } from "../../gateway/cli/hold-command.js";
import { lampTestTable } from "../../gateway/cli/lamp-test-command.js";

const base = { v: 1 as const, id: "c", by: "alice" };
const signal: SignalContext = {
  stage: "main",
  holdRefusal: null,
  held: null,
  lampTestRefusal: null,
  lampTest: null,
  lampChannels: 10,
  lampTestBoundMs: (stepMs) => 10 * stepMs + 30_000,
};
const running: CommandContext = {
  mode: "coordinated",
  latch: null,
  inDoubt: null,
  coordinatorBusy: null,
  signal,
};

describe("greenwave hold, decided", () => {
  it("holds the stage shown for 15 min unless told, and says how to release it", () => {
    const d = decideCommand({ name: "hold", ...base, on: true }, running);
    expect(d.controllerEvent).toEqual({ type: "hold", forMs: DEFAULT_HOLD_MS, by: "alice" });
    expect(d.outcome).toMatchObject({ ok: true, result: { forMs: DEFAULT_HOLD_MS } });
    expect(d.outcome.ok && d.outcome.result.message).toBe(
      "holding: stage main stays for at most 15 min (greenwave hold off to release; flash, a stop or a fault end it too)",
    );
    const longer = decideCommand({ name: "hold", ...base, on: true, forMs: 5_400_000 }, running);
    expect(longer.controllerEvent).toEqual({ type: "hold", forMs: 5_400_000, by: "alice" });
  });

  it("refuses with the core's reason, or a latched fault's, and changes nothing", () => {
    const refused = decideCommand(
      { name: "hold", ...base, on: true },
      {
        ...running,
        mode: "flash",
        signal: { ...signal, holdRefusal: "the intersection is not running a plan (flash)" },
      },
    );
    expect(refused).toEqual({
      outcome: { ok: false, message: "cannot hold: the intersection is not running a plan (flash)" },
      controllerEvent: null,
    });
    const latch = { kind: "red-fail" as const, groups: ["M"], message: "M dark", atWallMs: 1 };
    const faulted = decideCommand({ name: "hold", ...base, on: true }, { ...running, mode: "fault", latch });
    expect(faulted.outcome).toEqual({ ok: false, message: "a fault is latched (red-fail): reset it first" });
    expect(faulted.controllerEvent).toBeNull();
  });

  it("releases a hold in force, and says so when there is none", () => {
    const held = {
      ...running,
      mode: "hold" as const,
      signal: { ...signal, held: { by: "bob", leftMs: 60_000 } },
    };
    const d = decideCommand({ name: "hold", ...base, on: false }, held);
    expect(d.controllerEvent).toEqual({ type: "release-hold", by: "alice" });
    expect(d.outcome.ok && d.outcome.result.message).toMatch(
      /^hold released: the sequence goes on from stage main/,
    );
    const none = decideCommand({ name: "hold", ...base, on: false }, running);
    expect(none).toEqual({
      outcome: { ok: true, result: { message: "no hold was in force" } },
      controllerEvent: null,
    });
    const again = decideCommand({ name: "hold", ...base, on: true }, held);
    expect(again.outcome.ok && again.outcome.result.message).toMatch(/^hold extended \(was bob's\)/);
  });

  it("takes --for from 1 s to 2 h only, on the wire too", () => {
    const payload = (forMs: number) => Buffer.from(JSON.stringify({ ...base, on: true, forMs }));
    expect(parseCommand("hold", payload(7_200_000)).ok).toBe(true);
    expect(parseCommand("hold", payload(7_200_001))).toMatchObject({ ok: false, code: "invalid" });
    expect(parseCommand("hold", payload(999))).toMatchObject({ ok: false, code: "invalid" });
    expect(describeDuration(5_400_000)).toBe("1 h 30 min");
    expect(describeDuration(90_500)).toBe("90.5 s");
  });
});

describe("greenwave lamp-test, decided", () => {
  const flash: CommandContext = { ...running, mode: "flash" };

  it("starts only with the operator's confirmation, and says how many lamps and how long", () => {
    const unconfirmed = decideCommand({ name: "lamp-test", ...base, action: "start" }, flash);
    expect(unconfirmed.controllerEvent).toBeNull();
    expect(unconfirmed.outcome.ok).toBe(false);
    expect(!unconfirmed.outcome.ok && unconfirmed.outcome.message).toContain(
      "needs the operator's confirmation",
    );
    const d = decideCommand(
      { name: "lamp-test", ...base, action: "start", confirm: true, stepMs: 3000 },
      flash,
    );
    expect(d.controllerEvent).toEqual({ type: "lamp-test", id: "c", by: "alice", stepMs: 3000 });
    expect(d.outcome).toMatchObject({ ok: true, result: { channels: 10, stepMs: 3000, boundMs: 60_000 } });
  });

  it("refuses outside scheduled flash with the controller's reason", () => {
    const d = decideCommand(
      { name: "lamp-test", ...base, action: "start", confirm: true },
      {
        ...running,
        signal: { ...signal, lampTestRefusal: "the intersection is not in scheduled flash (coordinated)" },
      },
    );
    expect(d).toEqual({
      outcome: {
        ok: false,
        message: "cannot start a lamp test: the intersection is not in scheduled flash (coordinated)",
      },
      controllerEvent: null,
    });
  });

  it("aborts only a running test, and reports the last one", () => {
    const none = decideCommand({ name: "lamp-test", ...base, action: "abort" }, flash);
    expect(none.controllerEvent).toBeNull();
    const report = {
      id: "c0",
      by: "bob",
      stepMs: 2000,
      state: "running" as const,
      channels: 10,
      current: "M green",
      results: [],
      message: "running",
      startedAt: "t",
      endedAt: null,
    };
    const busy = { ...flash, signal: { ...signal, lampTest: report } };
    expect(decideCommand({ name: "lamp-test", ...base, action: "abort" }, busy).controllerEvent).toEqual({
      type: "abort-lamp-test",
      by: "alice",
    });
    expect(decideCommand({ name: "lamp-test", ...base, action: "report" }, busy)).toEqual({
      outcome: { ok: true, result: { report } },
      controllerEvent: null,
    });
  });
});

describe("the commands' words", () => {
  it("reads durations as people write them, and refuses the rest naming the flag", () => {
    expect(parseDuration("1h30m", "--for")).toBe(5_400_000);
    expect(parseDuration("2.5s", "--step")).toBe(2500);
    expect(parseDuration("500ms", "--step")).toBe(500);
    expect(() => parseDuration("10 minutes", "--for")).toThrow(/--for must be a duration like 90s, 10m/);
    expect(holdDuration(undefined, true)).toBeUndefined();
    expect(holdDuration("10m", true)).toBe(600_000);
    expect(() => holdDuration("10m", false)).toThrow(/--for goes with hold on/);
    expect(() => holdDuration("2h1s", true)).toThrow(/--for must be from 1 s to 2 h/);
  });

  it("prints the lamp test as a table, with what to do about the lamps that are not ok", () => {
    const table = lampTestTable("x1", {
      id: "a",
      by: "alice",
      stepMs: 2000,
      state: "completed",
      channels: 3,
      current: null,
      results: [
        { group: "M", lamp: "red", verdict: "ok", readings: 20, lit: 20, others: [] },
        { group: "S", lamp: "yellow", verdict: "no-current", readings: 30, lit: 0, others: [] },
        { group: "PS", lamp: "walk", verdict: "other-lamp-lit", readings: 70, lit: 70, others: ["PM walk"] },
      ],
      message: "completed: 3 of 3 lamps tested, 2 not ok; the intersection is back in scheduled flash",
      startedAt: "t",
      endedAt: "t",
    });
    expect(table.split("\n")).toEqual([
      "",
      "lamp test at x1: completed: 3 of 3 lamps tested, 2 not ok; the intersection is back in scheduled flash",
      "LAMP             RESULT          READBACK",
      "M red            ok              lit in 20 of 20 readbacks",
      "S yellow         NO CURRENT      lit in 0 of 30 readbacks",
      "PS walk          OTHER LAMP LIT  lit in 70 of 70 readbacks; lit too: PM walk",
      "NO CURRENT: check the lamp (or LED module), its load switch and the field wiring of that channel.",
      "OTHER LAMP LIT: a crossed or stuck channel; check the wiring against the intersection file's channels.",
      "",
    ]);
  });
});
