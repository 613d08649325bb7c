import type { MqttClient } from "mqtt";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MAX_STREAM_CLIENTS, type RunningConsole } from "../../gateway/console/server.js";
import { eventually } from "../support/browser.js";
import {
  CONSOLE_TOPIC,
  type ConsoleFixture,
  startConsoleFixture,
  viewOf,
} from "../support/console-fixture.js";

/**
 * The console's server without a browser: an embedded broker, hand-made messages of the wire's formats
 * (docs/protocol.md, docs/event-log.md), and what /api/state and the live stream make of them —
 * including what they must drop.
 */

const TOPIC = CONSOLE_TOPIC;
let fixture: ConsoleFixture;
let web: RunningConsole;
let publisher: MqttClient;

beforeEach(async () => {
  fixture = await startConsoleFixture("test-publisher");
  ({ web, publisher } = fixture);
});

afterEach(async () => await fixture.close());

const state = () => fixture.state();

function status(intersection: string, overrides: Record<string, unknown> = {}) {
  return {
    v: 1,
    corridor: "main-street",
    intersection,
    name: `Main St & ${intersection}`,
    position: 0,
    mode: "coordinated",
    plan: { id: "off-peak", version: 1, digest: "5491ab78098f" },
    fault: null,
    lock: { holder: "alice", token: 7 },
    lastTxn: { id: "t-1", outcome: "committed", at: "2026-12-01T10:00:00.000Z" },
    cycle: {
      stage: "main",
      startedAt: "2026-12-01T10:00:00.000Z",
      lengthMs: 80000,
      offsetErrorMs: 0,
      inStep: true,
    },
    clock: { state: "synchronised", source: "chrony", offsetMs: 2 },
    at: new Date().toISOString(),
    ...overrides,
  };
}

/** A hires batch with the given rows, all at `at` offsets from now on the gateway's clock. */
function hires(intersection: string, rows: [seq: number, atMs: number, code: number, param: number][]) {
  return {
    v: 1,
    corridor: "main-street",
    intersection,
    device: intersection,
    aspects: { M: "green", S: "red", PS: "walk", PM: "dont-walk" },
    events: rows.map(([seq, at, code, param]) => ({ seq, at: Math.floor(at / 100) * 100, code, param })),
    at: new Date().toISOString(),
  };
}

const publish = (topic: string, payload: unknown, retain = false) =>
  publisher.publishAsync(
    `${TOPIC}/${topic}`,
    typeof payload === "string" ? payload : JSON.stringify(payload),
    {
      qos: 1,
      retain,
    },
  );

const view = viewOf;

describe("the console's server", () => {
  it("lists the corridor in order and shows each intersection's status, availability, aspects and events", async () => {
    const initial = await state();
    expect(initial.intersections.map((i) => [i.id, i.positionM])).toEqual([
      ["elm", 0],
      ["oak", 350],
      ["pine", 770],
      ["cedar", 1070],
    ]);
    expect(initial.readOnly).toBe(true);
    expect(view(initial, "elm").status).toBeNull();

    await publish("oak/status", status("oak"), true);
    await publish("oak/availability", { v: 1, online: true, at: new Date().toISOString() }, true);
    await publish("oak/events", {
      v: 1,
      corridor: "main-street",
      intersection: "oak",
      seq: 5,
      at: new Date().toISOString(),
      type: "fault-reset",
      actor: "alice",
      detail: { reason: "lamp replaced" },
    });
    const now = Date.now();
    await publish("oak/hires", hires("oak", [[1, now, 131, 2]]));
    const shown = await eventually("oak's state", 5000, async () => {
      const s = await state();
      const oak = view(s, "oak");
      return oak.status && oak.online && oak.aspects && oak.events.length === 2 ? oak : null;
    });
    expect(shown.status).toMatchObject({
      mode: "coordinated",
      plan: { id: "off-peak", version: 1 },
      lock: { holder: "alice" },
    });
    expect(shown.status?.clock?.state).toBe("synchronised");
    expect(shown.aspects).toEqual({ M: "green", S: "red", PS: "walk", PM: "dont-walk" });
    expect(shown.events.map((e) => e.text)).toEqual(
      expect.arrayContaining(["fault-reset by alice reason=lamp replaced", "131 coord pattern change (2)"]),
    );
    expect(shown.groups.map((g) => [g.id, g.phase])).toEqual([
      ["ML", 1],
      ["M", 2],
      ["S", 4],
      ["PS", 2],
      ["PM", 4],
    ]);
  });

  it("counts and drops malformed, oversized, foreign and duplicate messages without changing what it shows", async () => {
    await publish("elm/status", status("elm"));
    await eventually("elm's status", 5000, async () => view(await state(), "elm").status);
    await publish("elm/status", "not json");
    await publish("elm/status", { ...status("elm"), mode: "dancing" });
    await publish("elm/status", status("oak")); // another intersection's status on elm's topic
    await publish("elm/hires", { ...hires("elm", []), events: [{ seq: 1, at: 0, code: 1, param: 999 }] });
    await publish("elm/hires", JSON.stringify({ ...hires("elm", []), device: "x".repeat(70 * 1024) }));
    await publish("nowhere/status", status("nowhere"));
    const now = Date.now();
    await publish("elm/hires", hires("elm", [[10, now, 1, 2]]));
    await publish("elm/hires", hires("elm", [[10, now, 1, 2]]));
    const s = await eventually("the counters", 5000, async () => {
      const c = await state();
      return c.counters.hiresDuplicates === 1 ? c : null;
    });
    expect(s.counters).toMatchObject({ malformed: 4, tooLarge: 1, foreign: 1, hiresDuplicates: 1 });
    expect(view(s, "elm").status?.mode).toBe("coordinated");
  });

  it("draws the through group's greens and the observed band from the event log", async () => {
    // Every intersection green on phase 2 (M) from 100 s ago until now: one band over the whole window.
    const now = Date.now();
    for (const [i, id] of ["elm", "oak", "pine", "cedar"].entries()) {
      await publish(`${id}/status`, status(id));
      await publish(
        `${id}/hires`,
        hires(id, [
          [1, now - 250_000, 131, 2],
          [2, now - 250_000, 1, 2],
          [3, now - 1000 * (i + 1), 8, 4], // the side street's yellow: another phase, no change for M
        ]),
      );
    }
    const d = await eventually("the diagram", 5000, async () => {
      const s = await state();
      return s.diagram.sites.every((site) => site.segments.length > 0) ? s.diagram : null;
    });
    expect(d.sites.map((site) => [site.id, site.throughGroup, site.phase])).toEqual([
      ["elm", "M", 2],
      ["oak", "M", 2],
      ["pine", "M", 2],
      ["cedar", "M", 2],
    ]);
    for (const site of d.sites) expect(site.segments.map((g) => g.color)).toEqual(["green"]);
    expect(d.forward).toHaveLength(1);
    expect(d.reverse).toHaveLength(1);
    // The band's departures cover the window up to the last vehicle that has crossed by now.
    expect((d.forward[0]?.departEndMs ?? 0) - (d.forward[0]?.departStartMs ?? 0)).toBeCloseTo(
      d.toMs - d.travelMs - d.fromMs,
      -2,
    );
    expect(d.design).toMatchObject({ planId: "off-peak" });
    expect(d.design?.forwardMs).toBeGreaterThan(0);

    // A yellow at pine now cuts the band: the newest complete band is narrower.
    await publish(
      "pine/hires",
      hires("pine", [
        [4, now - 60_000, 8, 2],
        [5, now - 55_000, 10, 2],
        [6, now - 53_000, 1, 2],
      ]),
    );
    const cut = await eventually("the band cut at pine", 5000, async () => {
      const s = await state();
      return s.diagram.forward.length === 2 ? s.diagram : null;
    });
    expect(cut.sites[2]?.segments.map((g) => g.color)).toEqual(["green", "yellow", "red", "green"]);
    expect(cut.patternChanges.map((p) => p.intersection)).toEqual([]); // the 131s are before the window
  });

  it("streams a snapshot and then live updates; refuses clients past its bound; is read-only", async () => {
    const controller = new AbortController();
    const res = await fetch(`${web.url}api/stream`, { signal: controller.signal });
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let text = "";
    const read = async (pattern: RegExp) =>
      await eventually(`${pattern} on the stream`, 5000, async () => {
        const { value } = await reader.read();
        text += new TextDecoder().decode(value);
        return pattern.test(text);
      });
    await read(/event: snapshot\ndata: \{/);
    await publish("cedar/hires", hires("cedar", [[1, Date.now(), 1, 2]]));
    await read(/event: intersection\ndata: \{"id":"cedar"/);
    await read(/event: diagram\n/);
    controller.abort();

    const extra = [];
    for (let i = 0; i < MAX_STREAM_CLIENTS; i++) {
      const c = new AbortController();
      extra.push(c);
      await fetch(`${web.url}api/stream`, { signal: c.signal });
    }
    const refused = await fetch(`${web.url}api/stream`);
    expect(refused.status).toBe(503);
    for (const c of extra) c.abort();
    expect((await state()).counters.streamRefused).toBe(1);

    const post = await fetch(`${web.url}api/state`, { method: "POST" });
    expect(post.status).toBe(405);
    const page = await fetch(web.url);
    expect(await page.text()).toContain('<canvas id="diagram"');
    const chart = await fetch(`${web.url}vendor/chart.umd.min.js`);
    expect(chart.status).toBe(200);
    expect((await chart.text()).length).toBeGreaterThan(100_000);
  });
});
