import type { MqttClient } from "mqtt";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { eventually } from "../support/browser.js";
import {
  CONSOLE_TOPIC,
  type ConsoleFixture,
  startConsoleFixture,
  viewOf,
} from "../support/console-fixture.js";

/**
 * The web console's server fed hostile or unlucky `hires` messages over a real broker (aedes on
 * loopback): a gateway whose wall clock steps back (an RTC hours ahead corrected by chrony), a
 * gateway whose numbering starts over (its store replaced), prototype keys, another corridor's
 * message on our topic. What it draws afterwards is read from /api/state.
 */

const TOPIC = CONSOLE_TOPIC;
let fixture: ConsoleFixture;
let publisher: MqttClient;

beforeEach(async () => {
  fixture = await startConsoleFixture("attack-publisher");
  ({ publisher } = fixture);
});

afterEach(async () => await fixture.close());

const state = () => fixture.state();
const view = viewOf;

function status(intersection: string) {
  return {
    v: 1,
    corridor: "main-street",
    intersection,
    name: `Main St & ${intersection}`,
    position: 0,
    mode: "coordinated",
    plan: { id: "off-peak", version: 1, digest: "5491ab78098f" },
    fault: null,
    lock: null,
    lastTxn: null,
    cycle: null,
    clock: { state: "synchronised", source: "chrony", offsetMs: 2 },
    at: new Date().toISOString(),
  };
}

function hires(
  intersection: string,
  rows: [seq: number, atMs: number, code: number, param: number][],
  extra = {},
) {
  return {
    v: 1,
    corridor: "main-street",
    intersection,
    device: intersection,
    aspects: { M: "green", S: "red" },
    events: rows.map(([seq, at, code, param]) => ({ seq, at: Math.floor(at / 100) * 100, code, param })),
    at: new Date().toISOString(),
    ...extra,
  };
}

const publish = (topic: string, payload: unknown) =>
  publisher.publishAsync(
    `${TOPIC}/${topic}`,
    typeof payload === "string" ? payload : JSON.stringify(payload),
    {
      qos: 1,
    },
  );

/** elm's M (phase 2) green from `from` on, then a yellow and red 20 s before now: two segments to draw. */
const greenThenYellow = (firstSeq: number, now: number): [number, number, number, number][] => [
  [firstSeq, now - 100_000, 1, 2],
  [firstSeq + 1, now - 20_000, 8, 2],
  [firstSeq + 2, now - 16_000, 10, 2],
];

describe("the console under forged and unlucky hires messages", () => {
  it("a gateway whose wall clock stepped back an hour: what it logs after the step is drawn", async () => {
    await publish("elm/status", status("elm"));
    const now = Date.now();
    // An hour ahead (RTC wrong before chrony synchronised): a green, a yellow.
    await publish(
      "elm/hires",
      hires("elm", [
        [1, now + 3_600_000, 1, 2],
        [2, now + 3_650_000, 8, 2],
      ]),
    );
    // Stepped back: the real last 100 s.
    await publish("elm/hires", hires("elm", greenThenYellow(3, now)));
    const elm = await eventually("elm's segments after the step", 5000, async () => {
      const s = await state();
      const site = s.diagram.sites.find((x) => x.id === "elm");
      return site && site.segments.length > 0 ? site : null;
    }).catch(async (error: Error) => {
      const s = await state();
      throw new Error(
        `${error.message}: elm's segments ${JSON.stringify(s.diagram.sites.find((x) => x.id === "elm")?.segments)}`,
      );
    });
    expect(elm.segments.map((g) => g.color)).toEqual(["green", "yellow", "red"]);
  });

  it("a gateway whose numbering starts over (its store replaced): its new rows are drawn, not dropped as duplicates", async () => {
    await publish("elm/status", status("elm"));
    const now = Date.now();
    // Before the replacement: the old store's numbers, an hour back.
    await publish("elm/hires", hires("elm", [[500_000, now - 3_600_000, 1, 2]]));
    await eventually("the old row", 5000, async () => (await state()).counters.malformed === 0);
    // The new store counts from 1 again.
    await publish("elm/hires", hires("elm", greenThenYellow(1, now)));
    const result = await eventually("elm's new rows", 5000, async () => {
      const s = await state();
      const site = s.diagram.sites.find((x) => x.id === "elm");
      return site && site.segments.length >= 3 ? s : null;
    }).catch(async (error: Error) => {
      const s = await state();
      throw new Error(
        `${error.message}: duplicates ${s.counters.hiresDuplicates}, elm's segments ${JSON.stringify(s.diagram.sites.find((x) => x.id === "elm")?.segments)}`,
      );
    });
    expect(result.diagram.sites.find((x) => x.id === "elm")?.segments.map((g) => g.color)).toEqual([
      "green",
      "yellow",
      "red",
    ]);
  });

  it("reserved and prototype keys in aspects, another corridor's batch on our topic, a non-identifier group: dropped and counted, nothing polluted", async () => {
    const now = Date.now();
    await publish("oak/hires", hires("oak", [[1, now, 1, 2]]));
    await eventually("oak's aspects", 5000, async () => view(await state(), "oak").aspects);
    const forged = [
      hires("oak", [], { aspects: { constructor: "green" } }),
      hires("oak", [], { aspects: { toString: "green" } }),
      hires("oak", [], { corridor: "elsewhere" }),
      hires("oak", [], { aspects: { "../../x": "green" } }),
      hires("oak", [[2, now, 1, 2]], { events: [{ seq: 2, at: now, code: 1, param: 2, __proto__x: 1 }] }),
    ];
    for (const payload of forged) await publish("oak/hires", payload);
    const s = await eventually("the forged batches counted", 5000, async () => {
      const c = await state();
      return c.counters.malformed >= forged.length ? c : null;
    });
    expect(s.counters.malformed).toBe(forged.length);
    expect(view(s, "oak").aspects).toEqual({ M: "green", S: "red" });
    // JSON.parse makes "__proto__" an own key; the wire's schema leaves it out (zod skips it), so the
    // batch is taken without it and no object's prototype is touched.
    await publish(
      "oak/hires",
      `{"v":1,"corridor":"main-street","intersection":"oak","device":"oak","aspects":{"__proto__":{"polluted":"green"},"M":"red"},"events":[],"at":"${new Date().toISOString()}"}`,
    );
    const after = await eventually("the __proto__ batch", 5000, async () => {
      const c = await state();
      return view(c, "oak").aspects?.M === "red" ? c : null;
    });
    expect(view(after, "oak").aspects).toEqual({ M: "red" });
    expect(after.counters.malformed).toBe(forged.length);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
