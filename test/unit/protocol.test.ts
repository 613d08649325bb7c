import { classifyInbound, commandSender } from "../../gateway/protocol/inbound-routes.js";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { mayPublish, maySubscribe, type Principal } from "../../gateway/broker/acl.js";
import { backoffDelayMs } from "../../gateway/core/backoff.js";
import { decideCommand } from "../../gateway/node/commands.js";
import { MAX_COMMAND_BYTES, MAX_PLAN_PUSH_BYTES, parseCommand } from "../../gateway/protocol/messages.js";
import { COMMANDS, intersectionTopics, parseTopic } from "../../gateway/protocol/topics.js";

const bytes = (value: unknown) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value));
const valid = {
  "fault-reset": { v: 1, id: "c1", by: "alice" },
  flash: { v: 1, id: "c1", by: "alice", on: true },
  status: { v: 1, id: "c1", by: "alice" },
  "txn-resolve": { v: 1, id: "c1", by: "alice", txnId: "t1", outcome: "aborted" },
  "plan-push": {
    v: 1,
    id: "c1",
    by: "alice",
    planFile: { id: "p" },
    atWallMs: null,
    leadMs: 10_000,
    ackTimeoutMs: 0,
  },
  audit: { v: 1, id: "c1", by: "alice", beforeSeq: null, sinceWallMs: null, limit: 500 },
  events: { v: 1, id: "c1", by: "alice", afterSeq: 0, sinceWallMs: null, untilWallMs: null, limit: 2000 },
  hold: { v: 1, id: "c1", by: "alice", on: true, forMs: 600_000 },
  "lamp-test": { v: 1, id: "c1", by: "alice", action: "start", stepMs: 2000, confirm: true },
} as const;

describe("command payloads", () => {
  for (const name of COMMANDS) {
    describe(name, () => {
      it("accepts a valid payload", () => {
        const parsed = parseCommand(name, bytes(valid[name]));
        expect(parsed).toMatchObject({ ok: true, command: { name, id: "c1", by: "alice" } });
      });
      it("refuses malformed JSON, without a correlation id", () => {
        expect(parseCommand(name, bytes('{"v":1,'))).toMatchObject({ ok: false, code: "not-json", id: null });
      });
      it("refuses invalid UTF-8", () => {
        expect(parseCommand(name, Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))).toMatchObject({
          ok: false,
          code: "not-json",
        });
      });
      it("refuses an oversized payload unread", () => {
        const limit = name === "plan-push" ? MAX_PLAN_PUSH_BYTES : MAX_COMMAND_BYTES;
        const big = bytes({ ...valid[name], pad: "x".repeat(limit) });
        expect(parseCommand(name, big)).toMatchObject({ ok: false, code: "too-large", id: null });
      });
      it("refuses another protocol version, echoing the correlation id", () => {
        expect(parseCommand(name, bytes({ ...valid[name], v: 2 }))).toMatchObject({
          ok: false,
          code: "unsupported-version",
          id: "c1",
        });
      });
      it("refuses wrongly-typed and missing fields, naming the field", () => {
        const wrong = parseCommand(name, bytes({ ...valid[name], by: 42 }));
        expect(wrong).toMatchObject({ ok: false, code: "invalid", id: "c1" });
        expect(!wrong.ok && wrong.message).toContain("by");
        const { by: _by, ...missing } = valid[name];
        expect(parseCommand(name, bytes(missing))).toMatchObject({ ok: false, code: "invalid" });
        expect(parseCommand(name, bytes([1, 2, 3]))).toMatchObject({ ok: false, code: "invalid", id: null });
        expect(parseCommand(name, bytes({ ...valid[name], extra: true }))).toMatchObject({
          ok: false,
          code: "invalid",
        });
      });
    });
  }

  it("refuses an unknown command", () => {
    expect(parseCommand("self-destruct", bytes(valid.status))).toMatchObject({
      ok: false,
      code: "unknown-command",
      id: "c1",
    });
  });

  it("never throws, whatever the bytes", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...COMMANDS, "nope"),
        fc.uint8Array({ maxLength: 600 }),
        (name, payload) => {
          const parsed = parseCommand(name, payload);
          expect(typeof parsed.ok).toBe("boolean");
        },
      ),
    );
    fc.assert(
      fc.property(fc.constantFrom(...COMMANDS), fc.jsonValue(), (name, value) => {
        const parsed = parseCommand(name, bytes(JSON.stringify(value)));
        if (parsed.ok) expect(parsed.command.name).toBe(name);
      }),
    );
  });
});

describe("topics", () => {
  it("round-trips the intersection's topics", () => {
    const t = intersectionTopics("main-street", "elm");
    expect(parseTopic(t.status)).toEqual({ corridor: "main-street", intersection: "elm", kind: "status" });
    expect(parseTopic(t.command("fault-reset"))).toEqual({
      corridor: "main-street",
      intersection: "elm",
      kind: "cmd",
      command: "fault-reset",
    });
    expect(parseTopic("greenwave/v2/main-street/elm/status")).toBeNull();
    expect(parseTopic("greenwave/v1/main-street/elm/status/extra")).toBeNull();
    expect(parseTopic("greenwave/v1/main-street/elm/bogus")).toBeNull();
  });
});

describe("broker ACL", () => {
  const elm: Principal = {
    role: "gateway",
    username: "gw-elm",
    corridor: "main-street",
    intersection: "elm",
  };
  const operator: Principal = { role: "operator", username: "alice" };
  const t = intersectionTopics("main-street", "elm");
  const oak = intersectionTopics("main-street", "oak");

  it("lets a gateway publish only under its own intersection, never a command", () => {
    expect(mayPublish(elm, t.status)).toBe(true);
    expect(mayPublish(elm, t.events)).toBe(true);
    expect(mayPublish(elm, t.reply)).toBe(true);
    expect(mayPublish(elm, oak.status)).toBe(false);
    expect(mayPublish(elm, t.command("fault-reset"))).toBe(false);
    expect(mayPublish(elm, oak.command("fault-reset"))).toBe(false);
    expect(mayPublish(elm, "greenwave/v1/other-corridor/elm/status")).toBe(false);
    expect(mayPublish(elm, "something/else")).toBe(false);
  });

  it("lets an operator publish commands only, and only under its own login", () => {
    const me = (operator as { username: string }).username;
    expect(mayPublish(operator, oak.command("fault-reset", me))).toBe(true);
    // Without the sender level the gateway could not tell who sent it: refused under users.
    expect(mayPublish(operator, oak.command("fault-reset"))).toBe(false);
    // Nor under another operator's name.
    expect(mayPublish(operator, oak.command("fault-reset", `${me}-not`))).toBe(false);
    expect(mayPublish(operator, oak.status)).toBe(false);
    expect(mayPublish(operator, `${oak.command("fault-reset", me)}/deeper`)).toBe(false);
    // A gateway's credentials never command, whatever name they put on it.
    expect(mayPublish(elm, oak.command("flash", me))).toBe(false);
  });

  it("reads a command topic's sender: the login after @, or none", () => {
    expect(commandSender("flash/@alice")).toEqual({ name: "flash", operator: "alice" });
    expect(commandSender("flash")).toEqual({ name: "flash", operator: null });
    expect(commandSender("flash/alice")).toEqual({ name: "flash", operator: null });
    expect(classifyInbound(oak.command("flash", "alice"), "main-street", "oak")?.cls).toBe("command");
    expect(classifyInbound(`${oak.command("flash", "alice")}/deeper`, "main-street", "oak")).toBeNull();
    expect(classifyInbound(`${oak.command("flash")}/alice`, "main-street", "oak")).toBeNull();
  });

  it("keeps a gateway's subscriptions inside its corridor", () => {
    expect(maySubscribe(elm, t.commandFilter)).toBe(true);
    expect(maySubscribe(elm, "greenwave/v1/main-street/+/status")).toBe(true);
    expect(maySubscribe(elm, "greenwave/v1/#")).toBe(false);
    expect(maySubscribe(elm, "#")).toBe(false);
    expect(maySubscribe(elm, "greenwave/v1/+/+/status")).toBe(false);
    expect(maySubscribe(operator, "greenwave/v1/#")).toBe(true);
    expect(maySubscribe(operator, "#")).toBe(false);
  });
});

describe("reconnect back-off", () => {
  it("grows exponentially, is capped, and stays in the upper half of its step", () => {
    const policy = { initialMs: 250, maxMs: 10_000 };
    fc.assert(
      fc.property(fc.nat(1000), fc.double({ min: 0, max: 1, noNaN: true }), (attempt, r) => {
        const step = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 30));
        const delay = backoffDelayMs(policy, attempt, r);
        expect(delay).toBeGreaterThanOrEqual(Math.floor(step / 2));
        expect(delay).toBeLessThanOrEqual(step);
        expect(delay).toBeLessThanOrEqual(policy.maxMs);
      }),
    );
    expect(backoffDelayMs(policy, 0, 1)).toBe(250);
    expect(backoffDelayMs(policy, 3, 1)).toBe(2000);
    expect(backoffDelayMs(policy, 50, 0)).toBe(5000);
  });
});

describe("operator commands", () => {
  const latch = { kind: "red-fail" as const, groups: ["M"], message: "M dark", atWallMs: 1 };
  const base = { v: 1 as const, id: "c", by: "alice" };

  it("resets a latched fault, audited with who did it", () => {
    const d = decideCommand(
      { name: "fault-reset", ...base },
      { mode: "fault", latch, inDoubt: null, coordinatorBusy: null },
    );
    expect(d.controllerEvent).toEqual({ type: "operator-reset", by: "alice" });
    expect(d.outcome.ok).toBe(true);
  });

  it("says so when there is nothing to reset, and changes nothing", () => {
    const d = decideCommand(
      { name: "fault-reset", ...base },
      { mode: "coordinated", latch: null, inDoubt: null, coordinatorBusy: null },
    );
    expect(d.controllerEvent).toBeNull();
    expect(d.outcome).toMatchObject({ ok: true, result: { cleared: null } });
  });

  it("coordinates a plan push only when the gateway can, saying why not", () => {
    const push = {
      name: "plan-push" as const,
      ...base,
      planFile: {},
      atWallMs: null,
      leadMs: 10_000,
      ackTimeoutMs: 0,
    };
    const idle = { mode: "coordinated" as const, latch: null, inDoubt: null, coordinatorBusy: null };
    expect(decideCommand(push, idle).outcome.ok).toBe(true);
    const busy = decideCommand(push, { ...idle, coordinatorBusy: "already coordinating t9" });
    expect(busy.outcome).toEqual({ ok: false, message: "already coordinating t9" });
    expect(busy.controllerEvent).toBeNull();
  });

  it("refuses scheduled flash while a fault is latched", () => {
    const d = decideCommand(
      { name: "flash", on: false, ...base },
      { mode: "fault", latch, inDoubt: null, coordinatorBusy: null },
    );
    expect(d.controllerEvent).toBeNull();
    expect(d.outcome.ok).toBe(false);
  });
});
