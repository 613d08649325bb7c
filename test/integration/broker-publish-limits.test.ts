import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { type RunningBroker, startBroker } from "../../gateway/broker/broker.js";
import {
  DEFAULT_PUBLISH_LIMITS,
  pace,
  type PaceState,
  type PublishLimits,
  topicClass,
} from "../../gateway/broker/publish-limit.js";
import { hashPassword, loadBrokerUsers } from "../../gateway/broker/users.js";
import { brokerMetrics, parsePublishLimits } from "../../gateway/cli/broker.js";
import { loadCorridor, loadPlan } from "../../gateway/config/load.js";
import { pushPlan } from "../../gateway/operator/plan-push.js";
import { CoordinatorStore } from "../../gateway/store/coordinator-store.js";
import { startCorridorNodes, until } from "../../simulators/fixtures/mqtt-corridor.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** When each publish of a sequence of arrivals leaves the limiter: its time, or null when dropped. */
function releases(arrivals: readonly number[], limits: PublishLimits): (number | null)[] {
  let state: PaceState | undefined;
  return arrivals.map((t) => {
    const step = pace(state, t, limits);
    state = step.state;
    return step.verdict.kind === "pass" ? t : step.verdict.kind === "wait" ? t + step.verdict.waitMs : null;
  });
}

const limitsArb = fc.record({
  ratePerSecond: fc.integer({ min: 1, max: 500 }),
  burst: fc.integer({ min: 1, max: 200 }),
  maxDelayMs: fc.integer({ min: 0, max: 3000 }),
});

describe("the broker's publish limit (pure)", () => {
  it("lets through at most the burst plus the rate over any window, in arrival order", () => {
    fc.assert(
      fc.property(
        limitsArb,
        fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 400 }),
        (limits, gaps) => {
          let t = 0;
          const arrivals = gaps.map((g) => (t += g));
          const out = releases(arrivals, limits).filter((r): r is number => r !== null);
          // In order (a topic's QoS 1 messages stay in order)...
          for (let i = 1; i < out.length; i++) expect(out[i]).toBeGreaterThanOrEqual(out[i - 1] as number);
          // ... and within any window [out[i], out[j]]: j - i + 1 ≤ burst + rate × window.
          for (let i = 0; i < out.length; i++)
            for (let j = i; j < out.length; j++) {
              const windowS = ((out[j] as number) - (out[i] as number)) / 1000;
              expect(j - i + 1).toBeLessThanOrEqual(limits.burst + limits.ratePerSecond * windowS + 1e-6);
            }
        },
      ),
    );
  });

  it("never drops a sender that keeps at most rate × max delay publishes in flight (a gateway's outbox: 16)", () => {
    fc.assert(
      fc.property(
        limitsArb,
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 0, max: 5 }),
        (limits, k, rtt) => {
          fc.pre(k <= (limits.ratePerSecond * limits.maxDelayMs) / 1000);
          // A closed loop: k sent at once, each next one sent when one is released (plus a round trip).
          let state: PaceState | undefined;
          const inFlight: number[] = Array.from({ length: k }, () => 0);
          for (let n = 0; n < 500; n++) {
            inFlight.sort((a, b) => a - b);
            const t = inFlight.shift() as number;
            const step = pace(state, t, limits);
            state = step.state;
            expect(step.verdict.kind).not.toBe("drop");
            inFlight.push((step.verdict.kind === "wait" ? t + step.verdict.waitMs : t) + rtt);
          }
        },
      ),
    );
  });

  it("once a login has lost a publish it is flooding: no more holds (the broker reads its stream at full speed) until its budget is whole", () => {
    const limits = { ratePerSecond: 10, burst: 5, maxDelayMs: 300 };
    const at = (ts: number[]) => releases(ts, limits);
    // 5 at once, then 3 held (100, 200, 300 ms), then dropped, and a token 100 ms later passes.
    const first = at([0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(first).toEqual([0, 0, 0, 0, 0, 100, 200, 300, null, null]);
    let state: PaceState | undefined;
    const verdicts = [0, 0, 0, 0, 0, 0, 0, 0, 0, 450, 460, 1400, 1400, 1400, 1400, 1400, 1400].map((t) => {
      const step = pace(state, t, limits);
      state = step.state;
      return step.verdict.kind;
    });
    // At 450 a token is back (pass); at 460 none: 40 ms from the next, which a login that is not
    // flooding would wait, but this one is: dropped. At 1400 the budget is whole: 5 at once, then held.
    expect(verdicts).toEqual([
      ...["pass", "pass", "pass", "pass", "pass", "wait", "wait", "wait", "drop"],
      ...["pass", "drop"],
      ...["pass", "pass", "pass", "pass", "pass", "wait"],
    ]);
    expect(state?.flooding).toBe(false);
  });

  it("greenwave broker's flags: whole numbers in range, or a usage error naming the flag", () => {
    const flags = { publishRate: "100", publishBurst: "1000", publishMaxDelayMs: "1000" };
    expect(parsePublishLimits(flags)).toEqual(DEFAULT_PUBLISH_LIMITS);
    expect(() => parsePublishLimits({ ...flags, publishRate: "0" })).toThrow(/--publish-rate/);
    expect(() => parsePublishLimits({ ...flags, publishBurst: "1e3" })).toThrow(/--publish-burst/);
    expect(() => parsePublishLimits({ ...flags, publishMaxDelayMs: "-5" })).toThrow(/--publish-max-delay-ms/);
  });

  it("names topics by the protocol's kinds", () => {
    expect(topicClass("greenwave/v1/main-street/elm/inbox/oak")).toBe("inbox");
    expect(topicClass("greenwave/v1/main-street/elm/cmd/flash/@alice")).toBe("cmd");
    expect(topicClass("greenwave/v1/main-street/elm/status")).toBe("status");
    expect(topicClass("greenwave/v1/main-street/@alice/decisions/t1")).toBe("decisions");
    expect(topicClass("elsewhere/x")).toBe("other");
    expect(topicClass("greenwave/v1/main-street/elm/constructor")).toBe("other");
  });
});

/** Per login, the most PUBLISHes it made in any one second, sampled from the broker's counts. */
async function peakPerSecond(broker: RunningBroker, seconds: number, during: () => Promise<void>) {
  const peaks = new Map<string, number>();
  const totals = new Map<string, number>();
  let last = new Map<string, number>();
  const snapshot = () => new Map([...broker.publishers].map(([login, c]) => [login, c.passed]));
  last = snapshot();
  let sampling = true;
  const sampler = (async () => {
    for (let s = 0; sampling && s < seconds; s++) {
      await sleep(1000);
      const now = snapshot();
      for (const [login, passed] of now) {
        const delta = passed - (last.get(login) ?? 0);
        peaks.set(login, Math.max(peaks.get(login) ?? 0, delta));
        totals.set(login, (totals.get(login) ?? 0) + delta);
      }
      last = now;
    }
  })();
  await during();
  await sampler;
  sampling = false;
  return { peaks, totals };
}

describe("the broker's publish limit against the gateways' own traffic (example corridor, 4 gateways)", () => {
  it("a corridor at work (status, events, a plan push) stays far under the limit: nothing held, nothing dropped", async () => {
    const broker = await startBroker({ host: "127.0.0.1", port: 0, users: null });
    cleanups.push(() => broker.close());
    const corridor = await startCorridorNodes(broker.url);
    cleanups.push(() => corridor.stop());
    await until("every gateway online", 10_000, () =>
      [...corridor.nodes.values()].every((node) => node.mqttConnected),
    );
    const coordinatorDir = mkdtempSync(join(tmpdir(), "greenwave-publish-limits-"));
    cleanups.push(() => rmSync(coordinatorDir, { recursive: true, force: true }));
    const seconds = 20;
    const { peaks, totals } = await peakPerSecond(broker, seconds, async () => {
      await sleep(5000);
      const store = CoordinatorStore.open(coordinatorDir);
      try {
        const result = await pushPlan({
          url: broker.url,
          name: "alice",
          corridor: loadCorridor("config/corridor.yaml"),
          plan: loadPlan("config/plans/am-peak.yaml"),
          atWallMs: null,
          leadMs: 3000,
          store,
          ackTimeoutMs: 3000,
        });
        expect(result.outcome).toBe("committed");
      } finally {
        store.close();
      }
    });
    const gateways = [...peaks].filter(([login]) => login.startsWith("client:greenwave-main-street-"));
    console.log(
      `[publish-limits] ${String(seconds)} s of the example corridor with a plan push: ` +
        [...peaks]
          .map(
            ([login, peak]) =>
              `${login} ${String(totals.get(login))} (${(Number(totals.get(login)) / seconds).toFixed(1)}/s, peak ${String(peak)}/s)`,
          )
          .join("; ") +
        `; limit ${String(DEFAULT_PUBLISH_LIMITS.ratePerSecond)}/s, burst ${String(DEFAULT_PUBLISH_LIMITS.burst)}`,
    );
    expect(gateways.length).toBe(4);
    for (const [login, peak] of gateways)
      expect(peak, `${login}'s busiest second`).toBeLessThanOrEqual(DEFAULT_PUBLISH_LIMITS.ratePerSecond / 3);
    expect(broker.counters.publishDelayed).toBe(0);
    expect(broker.counters.publishDropped).toBe(0);
  }, 60_000);
});

/** A flooder in a process of its own (the test's event loop carries the broker and the receiver). */
function flood(url: string, username: string, password: string, topic: string, count: number) {
  const mqttEntry = createRequire(import.meta.url).resolve("mqtt");
  const script = `
    const mqtt = require(${JSON.stringify(mqttEntry)});
    const c = mqtt.connect(${JSON.stringify(url)}, { protocolVersion: 4, reconnectPeriod: 0,
      clientId: "flooder", username: ${JSON.stringify(username)}, password: ${JSON.stringify(password)} });
    c.on("connect", async () => {
      c.stream.setMaxListeners(0);
      let acked = 0, errors = 0;
      const one = (e) => { if (e) errors++; if (++acked === ${String(count)}) { console.log(JSON.stringify({ acked, errors })); c.end(true, () => process.exit(0)); } };
      for (let i = 0; i < ${String(count)}; i += 250) {
        for (let j = i; j < Math.min(${String(count)}, i + 250); j++)
          c.publish(${JSON.stringify(topic)}, JSON.stringify({ v: 1, n: j }), { qos: 1 }, one);
        await new Promise((r) => setImmediate(r));
      }
    });
    c.on("error", (e) => { console.error(e.message); process.exit(2); });`;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const done = new Promise<{ acked: number; errors: number }>((resolve, reject) =>
    child.on("exit", (code) =>
      code === 0
        ? resolve(JSON.parse(out) as { acked: number; errors: number })
        : reject(new Error(`flooder exited ${String(code)}`)),
    ),
  );
  return { child, done };
}

describe("a QoS 1 flood from one gateway credential (broker with users and ACL, flooder in its own process)", () => {
  it("holds the flood to the limit and drops its excess, counted and logged by login and class; a legitimate sender's QoS 1 messages all arrive, promptly", async () => {
    const dir = mkdtempSync(join(tmpdir(), "greenwave-publish-flood-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const secret = "gateway-secret-1";
    const hash = await hashPassword(secret);
    writeFileSync(
      join(dir, "users.yaml"),
      `kind: broker-users
users:
${["elm", "oak", "pine"].map((i) => `  - { username: gw-${i}, passwordHash: "${hash}", role: gateway, corridor: main-street, intersection: ${i} }`).join("\n")}
`,
    );
    const logs: { message: string; detail?: Record<string, unknown> }[] = [];
    // GREENWAVE_TEST_NO_PUBLISH_LIMIT=1 runs the same attack against the broker without its limit.
    const unlimited = process.env.GREENWAVE_TEST_NO_PUBLISH_LIMIT === "1";
    const broker = await startBroker({
      host: "127.0.0.1",
      port: 0,
      users: loadBrokerUsers(join(dir, "users.yaml")),
      ...(unlimited ? { publishLimits: null } : {}),
      onLog: (_level, message, detail) => logs.push({ message, ...(detail ? { detail } : {}) }),
    });
    cleanups.push(() => broker.close());
    const connect = (who: string) =>
      mqtt.connectAsync(broker.url, {
        protocolVersion: 4,
        clientId: `greenwave-main-street-${who}`,
        username: `gw-${who}`,
        password: secret,
        reconnectPeriod: 0,
      });
    // elm: a receiver like the gateway's session (QoS 1 on its inbox), counting by sender.
    const elm = await connect("elm");
    cleanups.push(() => elm.endAsync(true));
    const received = { oak: 0, pine: new Map<number, number>() };
    elm.on("message", (topic, payload) => {
      if (topic.endsWith("/oak")) received.oak++;
      else {
        const { n, at } = JSON.parse(payload.toString()) as { n: number; at: number };
        received.pine.set(n, Date.now() - at);
      }
    });
    await elm.subscribeAsync("greenwave/v1/main-street/elm/inbox/+", { qos: 1 });
    const pine = await connect("pine");
    cleanups.push(() => pine.endAsync(true));

    const FLOOD = 60_000;
    const floodStart = performance.now();
    const flooder = flood(broker.url, "gw-oak", secret, "greenwave/v1/main-street/elm/inbox/oak", FLOOD);
    cleanups.push(() => void flooder.child.kill());
    await until("the flood under way", 10_000, () => broker.publishers.get("gw-oak") ?? received.oak > 0);
    // pine's corridor messages meanwhile: 100 over 5 s, QoS 1, each stamped when sent.
    const LEGIT = 100;
    for (let n = 0; n < LEGIT; n++) {
      await pine.publishAsync(
        "greenwave/v1/main-street/elm/inbox/pine",
        JSON.stringify({ n, at: Date.now() }),
        { qos: 1 },
      );
      await sleep(50);
    }
    const sent = await flooder.done;
    const floodSeconds = (performance.now() - floodStart) / 1000;
    await until("every legitimate message at elm", 20_000, () => received.pine.size === LEGIT);
    const oak = broker.publishers.get("gw-oak");
    const dropped = oak?.dropped.inbox ?? 0;
    // Everything the flood sent reached elm or was dropped, counted: nothing lost silently.
    await until("the flood delivered or counted", 20_000, () => received.oak + dropped === FLOOD);
    // The flood's drop reaches the log within its period (10 s): flush it now.
    await broker.close();
    cleanups.pop();
    const latencies = [...received.pine.values()].sort((a, b) => a - b);
    const worst = latencies[latencies.length - 1] as number;
    console.log(
      `[publish-flood] gw-oak sent ${String(FLOOD)} QoS 1 in ${floodSeconds.toFixed(1)} s (acked ${String(sent.acked)}, errors ${String(sent.errors)}): ` +
        `${String(received.oak)} reached elm, ${String(dropped)} dropped by the broker (${String(broker.counters.publishDelayed)} held first); ` +
        `gw-pine's ${String(LEGIT)} all reached elm, latency median ${String(latencies[LEGIT >> 1])} ms, worst ${String(worst)} ms`,
    );
    expect(sent.errors).toBe(0);
    expect(received.pine.size).toBe(LEGIT);
    // The flood reached elm at the limit's pace: its burst and the rate over the flood, not 60,000.
    expect(received.oak).toBeLessThanOrEqual(
      DEFAULT_PUBLISH_LIMITS.burst + DEFAULT_PUBLISH_LIMITS.ratePerSecond * floodSeconds,
    );
    expect(dropped).toBeGreaterThan(FLOOD / 2);
    expect(broker.counters.publishDropped).toBe(dropped);
    expect(worst, "the slowest legitimate message to elm (ms)").toBeLessThan(500);
    const line = logs.find((l) => l.message.startsWith("publishes dropped by the broker's publish limit"));
    expect(line?.detail?.dropped).toMatchObject({
      "gw-oak": { clientIds: ["flooder"], dropped: { inbox: expect.any(Number) as number } },
    });
    expect(String(line?.detail?.hint)).toMatch(/stop or fix that client/);
    expect(broker.publishers.get("gw-pine")?.dropped).toEqual({});
    // The metric `greenwave broker --http` serves says the same.
    expect(await brokerMetrics(broker).metrics()).toContain(
      `greenwave_broker_publish_dropped_total{login="gw-oak",class="inbox"} ${String(dropped)}`,
    );
  }, 60_000);
});
