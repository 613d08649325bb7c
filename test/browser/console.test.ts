import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadIntersection } from "../../gateway/config/load.js";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { cleanupProcesses, cli, exampleConfigCopy, start } from "../e2e/processes.js";
import {
  eventually,
  hasChromium,
  launchChromium,
  openPage,
  type RunningBrowser,
  screenshot,
} from "../support/browser.js";
import type { HistoryEntry } from "../support/lamp-history.js";

/**
 * The web console in a real browser (Debian's Chromium through playwright-core), against the demo
 * started the way a user starts it. One demo run, one page, checked step by step: the intersections in
 * corridor order; the lamps in step with the simulated modules' own histories; the time-space diagram's
 * bands; a plan push as a pattern change; a killed lamp as a fault. Screenshots go to
 * test-artifacts/console/ (GREENWAVE_UPDATE_SCREENSHOT=1 also writes docs/images/console.png).
 *
 * To see a band within a few minutes rather than after the offset correction's cycles, the demo runs a
 * copy of config/ whose start-up flash is lengthened at each intersection so that each one ends its
 * start-up just before its own first cycle start of off-peak (80 s cycle; cycle starts elm 0 s, oak
 * 21 s, pine 69 s, cedar 16 s after the daily sync point, modulo 80), with the demo's clock started at
 * 59 s past a cycle boundary: every intersection enters its plan about a second early, which its
 * correction absorbs in the first cycle. Nothing else of the corridor changes.
 */

const CLI = "dist/gateway/cli/main.js";
/** 11:00:00 in Berlin on a Tuesday is 9 h after the 02:00 sync, 405 cycles of 80 s: 59 s past a boundary. */
const CLOCK_START = "2026-12-01T11:00:59+01:00";
/** Start-up flash per intersection (all-red stays 4 s): ends 1 s before its first cycle start. */
const STARTUP_FLASH_S: Record<string, number> = { elm: 16, oak: 37, pine: 5, cedar: 32 };
const ORDER = ["elm", "oak", "pine", "cedar"];

const enabled = hasChromium("the web console's browser tests");
let browser: RunningBrowser | null = null;

beforeAll(async () => {
  if (!enabled) return;
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: npm run build first`);
  browser = await launchChromium();
}, 60_000);
afterAll(async () => await browser?.close());
afterEach(() => cleanupProcesses());

/**
 * config/ copied, each intersection's start-up flash set to STARTUP_FLASH_S and its module on a free
 * port (the demo's own 15021–15024 may be in use by another test's demo).
 */
async function demoConfig(): Promise<string> {
  return await exampleConfigCopy((id, text) => {
    const line = `startup: { flashSeconds: ${STARTUP_FLASH_S[id]}, allRedSeconds: 4 }`;
    return /^startup:.*$/m.test(text) ? text.replace(/^startup:.*$/m, line) : `${text}${line}\n`;
  });
}

/** The lamp channels of group M at an intersection, from its file (the module's layout). */
function mainChannels(corridorFile: string, id: string): { red: number; yellow: number; green: number } {
  const loaded = loadIntersection(join(corridorFile, "..", "intersections", `${id}.yaml`));
  const m = loaded.intersection.groups.findIndex((g) => g.id === "M");
  const channels = loaded.modules[0]?.channels ?? [];
  const find = (lamp: string) => channels.findIndex((c) => c?.group === m && c.lamp === lamp);
  return { red: find("red"), yellow: find("yellow"), green: find("green") };
}

/** When group M turned green or yellow, by the module's own history (real wall clock). */
function goStarts(entries: readonly HistoryEntry[], ch: { yellow: number; green: number }) {
  const starts: { t: number; aspect: "green" | "yellow" }[] = [];
  let last = "";
  for (const e of entries) {
    const lamp = e.outputs[ch.green] === "1" ? "green" : e.outputs[ch.yellow] === "1" ? "yellow" : "other";
    if (lamp !== last && lamp !== "other") starts.push({ t: e.t, aspect: lamp });
    last = lamp;
  }
  return starts;
}

interface PageDiagram {
  forward: unknown[];
  reverse: unknown[];
  forwardWidthMs: number | null;
  reverseWidthMs: number | null;
  patternChanges: { intersection: string; pattern: number }[];
}

describe.runIf(enabled)("the web console in Chromium, on the demo", () => {
  it("shows the corridor live: intersections in order, lamps in step with the modules, bands, a plan push, a fault", async () => {
    const corridor = await demoConfig();
    const demo = start([
      "demo",
      "--corridor",
      corridor,
      "--port",
      "0",
      "--http-port",
      "0",
      "--console-port",
      "0",
      "--quiet",
      "--no-schedule",
      "--clock-start",
      CLOCK_START,
    ]);
    await until("the demo to be up", 30_000, () => demo.out.includes("legend:"));
    const consoleUrl = /console\s+(http:\/\/127\.0\.0\.1:\d+\/)/.exec(demo.out)?.[1] as string;
    const brokerUrl = /broker\s+(mqtt:\/\/\S+)/.exec(demo.out)?.[1] as string;
    const control = (id: string) =>
      new RegExp(`simulator\\s+${id}/io1 (http://127\\.0\\.0\\.1:\\d+)/state`).exec(demo.out)?.[1] as string;
    expect(consoleUrl, demo.out).toBeTruthy();

    const { page, errors } = await openPage(browser as RunningBrowser, consoleUrl);
    // Every intersection of the corridor, in corridor order.
    await page.waitForSelector("article.intersection[data-intersection='cedar']");
    const shown = await page.$$eval("article.intersection", (cards) =>
      cards.map((c) => (c as unknown as { dataset: { intersection: string } }).dataset.intersection),
    );
    expect(shown).toEqual(ORDER);
    expect(await page.textContent("[data-intersection='elm'] h3")).toBe("Main St & Elm Ave");

    // Every change of each M head's aspect, with the browser's clock (the same as the modules').
    const watchStartMs = Date.now();
    await page.evaluate((ids) => {
      const log: { id: string; aspect: string; t: number }[] = [];
      (globalThis as unknown as { aspectLog: typeof log }).aspectLog = log;
      const doc = (globalThis as unknown as { document: { querySelector(s: string): unknown } }).document;
      for (const id of ids) {
        const head = doc.querySelector(`[data-intersection='${id}'] .head[data-group='M']`);
        const Observer = (
          globalThis as unknown as {
            MutationObserver: new (cb: () => void) => { observe(n: unknown, o: unknown): void };
          }
        ).MutationObserver;
        const record = () =>
          log.push({ id, aspect: (head as { dataset: { aspect: string } }).dataset.aspect, t: Date.now() });
        new Observer(record).observe(head, { attributes: true, attributeFilter: ["data-aspect"] });
        record();
      }
    }, ORDER);

    // The bands: once every intersection has run its plan for a cycle and vehicles at the design
    // speed have crossed the corridor (77 s at 50 km/h), a complete band is drawn with its width.
    const diagram = () =>
      page.evaluate(() =>
        (globalThis as unknown as { greenwaveConsole: { diagram(): unknown } }).greenwaveConsole.diagram(),
      ) as Promise<PageDiagram>;
    const banded = await eventually("a complete progression band on the diagram", 240_000, async () => {
      const d = await diagram();
      return d.forwardWidthMs !== null && d.forwardWidthMs > 0 ? d : null;
    });
    expect(banded.forward.length).toBeGreaterThan(0);
    const bandwidthText = await page.textContent("#bandwidth");
    expect(bandwidthText).toMatch(/elm → cedar \d+\.\d s/);
    const drawn = await page.evaluate(() =>
      (globalThis as unknown as { greenwaveConsole: { datasets(): { label: string }[] } }).greenwaveConsole
        .datasets()
        .map((d) => d.label),
    );
    expect(drawn).toContain("forward band");
    expect(drawn).toEqual(expect.arrayContaining(["green", "yellow", "red"]));
    await screenshot(page, "bands");

    // The lamps shown are the modules' lamps: every green and yellow start of M in each module's
    // history (while the page watched) appears on the page within 1.5 s.
    const watchEndMs = Date.now() - 2000;
    const log = (await page.evaluate(
      () => (globalThis as unknown as { aspectLog: { id: string; aspect: string; t: number }[] }).aspectLog,
    )) as { id: string; aspect: string; t: number }[];
    let checked = 0;
    for (const id of ORDER) {
      const history = ((await (await fetch(`${control(id)}/history`)).json()) as { entries: HistoryEntry[] })
        .entries;
      for (const go of goStarts(history, mainChannels(corridor, id))) {
        if (go.t < watchStartMs + 1000 || go.t > watchEndMs) continue;
        const seen = log.find(
          (l) => l.id === id && l.aspect === go.aspect && l.t >= go.t - 300 && l.t <= go.t + 1500,
        );
        expect(seen, `${id} M ${go.aspect} at ${new Date(go.t).toISOString()} on the page`).toBeTruthy();
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(8);

    // A plan push shows as a pattern change (event 131, am-peak is pattern 1) on the diagram.
    const push = cli([
      "plan",
      "push",
      "--corridor",
      "main-street",
      "--plan",
      join(corridor, "..", "plans", "am-peak.yaml"),
      "--broker",
      brokerUrl,
      // A gateway coordinates: it runs on the demo's clock (--clock-start), which this process does not.
      "--via",
      "elm",
    ]);
    expect(push.status, push.stdout + push.stderr).toBe(0);
    const changed = await eventually("the pattern change on the diagram", 150_000, async () => {
      const d = await diagram();
      const ones = d.patternChanges.filter((p) => p.pattern === 1);
      return ones.length === ORDER.length ? ones : null;
    });
    expect(changed.map((p) => p.intersection).sort()).toEqual([...ORDER].sort());
    expect(await page.textContent("#patterns")).toMatch(/elm → pattern 1/);
    await page.waitForFunction(() =>
      Array.from(
        (
          globalThis as unknown as {
            document: { querySelectorAll(s: string): ArrayLike<{ textContent: string }> };
          }
        ).document.querySelectorAll("[data-fact='plan']"),
      ).every((n) => n.textContent.startsWith("am-peak v")),
    );
    const shot = await screenshot(page, "pattern-change");
    if (process.env.GREENWAVE_UPDATE_SCREENSHOT === "1") {
      mkdirSync("docs/images", { recursive: true });
      copyFileSync(shot, "docs/images/console.png");
    }

    // A killed lamp: oak's M head dark on the module; the monitor latches a fault, the page shows it.
    const oakM = mainChannels(corridor, "oak");
    const put = await fetch(`${control("oak")}/faults`, {
      method: "PUT",
      body: JSON.stringify({ dark: [oakM.red, oakM.yellow, oakM.green] }),
    });
    expect(put.status).toBe(200);
    await page.waitForSelector("[data-intersection='oak'][data-fault='latched']", { timeout: 20_000 });
    expect(await page.textContent("[data-intersection='oak'] [data-fact='fault']")).toMatch(/red-fail/);
    expect(await page.textContent("[data-intersection='oak'] [data-fact='mode']")).toBe("fault");
    expect(await page.getAttribute("[data-intersection='elm']", "data-fault")).toBe("none");
    await screenshot(page, "fault");

    expect(errors.filter((e) => !e.includes("favicon"))).toEqual([]);
  }, 540_000);
});
