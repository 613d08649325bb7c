import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { takeToken, type TokenBucket } from "../../gateway/core/token-bucket.js";
import { classifyInbound } from "../../gateway/protocol/inbound-routes.js";
import {
  DEFAULT_INBOUND_LIMITS,
  type InboundLimits,
  type InboundMessage,
  InboundQueue,
} from "../../gateway/shell/inbound-queue.js";

const message = (sender: string, cls: InboundMessage["cls"] = "corridor"): InboundMessage => ({
  topic: `t/${sender}`,
  payload: Buffer.from("{}"),
  cls,
  sender,
});

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe("the token bucket", () => {
  it("never admits more than the burst plus the rate over the time elapsed, whatever the arrivals", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 2_000 }), { minLength: 1, maxLength: 400 }),
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: 500 }),
        (gaps, ratePerSecond, burst) => {
          let bucket: TokenBucket | undefined;
          let now = 0;
          let admitted = 0;
          for (const gap of gaps) {
            now += gap;
            const step = takeToken(bucket, now, { ratePerSecond, burst });
            bucket = step.bucket;
            if (step.admitted) admitted++;
          }
          expect(admitted).toBeLessThanOrEqual(burst + Math.floor((now * ratePerSecond) / 1000) + 1);
          expect(bucket?.tokens).toBeGreaterThanOrEqual(0);
          expect(bucket?.tokens).toBeLessThanOrEqual(burst);
        },
      ),
    );
  });

  it("admits a sender that keeps to its rate, every time", () => {
    let bucket: TokenBucket | undefined;
    for (let i = 0; i < 1000; i++) {
      const step = takeToken(bucket, i * 20, { ratePerSecond: 50, burst: 1 });
      bucket = step.bucket;
      expect(step.admitted).toBe(true);
    }
  });
});

describe("the inbound queue", () => {
  const limits: InboundLimits = {
    ...DEFAULT_INBOUND_LIMITS,
    queueCapacity: { command: 4, corridor: 1000, decision: 10 },
    perSenderBurst: { command: 100, corridor: 50, decision: 10 },
  };

  it("rate-limits each sender on its own: a flood from one does not crowd out another", async () => {
    const handled: string[] = [];
    const drops: string[] = [];
    const now = 0; // no time passes: only the bursts count
    const queue = new InboundQueue(
      (m) => handled.push(m.sender),
      (m, reason) => drops.push(`${m.sender}:${reason}`),
      () => now,
      limits,
    );
    for (let i = 0; i < 20_000; i++) queue.offer(message("elm"));
    queue.offer(message("oak"));
    while (queue.depth > 0) await turn();
    expect(handled.filter((s) => s === "elm")).toHaveLength(50);
    expect(handled).toContain("oak");
    expect(drops).toHaveLength(20_000 - 50);
    expect(new Set(drops)).toEqual(new Set(["elm:rate-limited"]));
    expect(queue.dropped.get("corridor:rate-limited")).toBe(20_000 - 50);
  });

  it("drops past a full queue, and counts it", () => {
    const drops: string[] = [];
    const queue = new InboundQueue(
      () => {},
      (_m, reason) => drops.push(reason),
      () => 0,
      limits,
    );
    for (let i = 0; i < 10; i++) queue.offer(message("operators", "command"));
    expect(queue.depth).toBe(4);
    expect(drops).toEqual(Array(6).fill("queue-full"));
    queue.close();
  });

  it("does its work in slices, so that a timer due meanwhile runs between them", async () => {
    const order: string[] = [];
    const queue = new InboundQueue(
      () => {
        // Each message really costs 2 ms: a 5 ms slice takes three, and a 1 ms timer falls due meanwhile.
        const until = performance.now() + 2;
        while (performance.now() < until);
        // The tick's timer is set during the first piece of work: it falls due inside the first slice.
        if (order.length === 0) setTimeout(() => order.push("tick"), 1);
        order.push("work");
      },
      () => {},
      () => performance.now(),
      { ...limits, perSenderBurst: { ...limits.perSenderBurst, corridor: 1000 } },
    );
    for (let i = 0; i < 30; i++) queue.offer(message("elm"));
    while (queue.depth > 0) await turn();
    await new Promise((resolve) => setTimeout(resolve, 5));
    const tickAt = order.indexOf("tick");
    // The timer ran between two slices: after some work and before the end of it.
    expect(tickAt).toBeGreaterThan(0);
    expect(tickAt).toBeLessThan(order.length - 1);
    expect(order.filter((o) => o === "work")).toHaveLength(30);
  });

  it("forgets the least recently seen sender past its bound, and stays within it", () => {
    const queue = new InboundQueue(
      () => {},
      () => {},
      () => 0,
      { ...limits, maxSenders: 8 },
    );
    for (let i = 0; i < 1000; i++) queue.offer(message(`s${i}`));
    expect((queue as unknown as { buckets: Map<string, unknown> }).buckets.size).toBe(8);
    queue.close();
  });
});

describe("classifying what arrives", () => {
  const root = "greenwave/v1/main-street";
  it("takes the sender of an inbox message from its topic, and knows commands and decision records", () => {
    expect(classifyInbound(`${root}/oak/inbox/elm`, "main-street", "oak")).toEqual({
      cls: "corridor",
      sender: "elm",
    });
    expect(classifyInbound(`${root}/oak/cmd/flash`, "main-street", "oak")?.cls).toBe("command");
    expect(classifyInbound(`${root}/@alice/decisions/t1`, "main-street", "oak")).toEqual({
      cls: "decision",
      sender: "@alice",
    });
  });
  it("refuses anything else: another intersection's inbox, another corridor, extra levels", () => {
    expect(classifyInbound(`${root}/elm/inbox/pine`, "main-street", "oak")).toBeNull();
    expect(classifyInbound(`greenwave/v1/other/oak/inbox/elm`, "main-street", "oak")).toBeNull();
    expect(classifyInbound(`${root}/oak/inbox/elm/x`, "main-street", "oak")).toBeNull();
    expect(classifyInbound(`${root}/oak/status`, "main-street", "oak")).toBeNull();
  });
});
