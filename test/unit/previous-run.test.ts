import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadIntersectionSetup } from "../../gateway/config/load.js";
import {
  configDigest,
  judgePreviousRun,
  planDigestOf,
  runIdentity,
  runStarted,
} from "../../gateway/node/previous-run.js";
import { GatewayStore } from "../../gateway/store/store.js";
import { fixtureFiles, writeFixtureFiles } from "../support/fixture-intersection.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** The test fixture's files in a fresh directory, edited by `edit`; returns the loaded setup. */
function fixture(edit: (text: string) => string = (t) => t) {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-previous-run-"));
  dirs.push(dir);
  writeFixtureFiles(dir, fixtureFiles('{ tcp: "127.0.0.1:1502" }'));
  const file = join(dir, "x1.yaml");
  writeFileSync(file, edit(readFileSync(file, "utf8")));
  return { dir, setup: loadIntersectionSetup(file) };
}

const identityOf = (setup: ReturnType<typeof fixture>["setup"]) =>
  runIdentity(
    setup.intersection.intersection,
    setup.intersection.modules,
    setup.intersection.detectorWiring,
    setup.initialPlan,
  );

describe("the configuration digest", () => {
  it("is the same for the same file loaded twice, and changes with a timing, the wiring, a module's link or its watchdog", () => {
    const base = identityOf(fixture().setup).configDigest;
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(identityOf(fixture().setup).configDigest).toBe(base);
    const edits: [string, (t: string) => string][] = [
      [
        "a yellow time",
        (t) =>
          t.replace(
            "yellowSeconds: 3, redClearanceSeconds: 1 }\n  - { id: S",
            "yellowSeconds: 4, redClearanceSeconds: 1 }\n  - { id: S",
          ),
      ],
      [
        "the wiring",
        (t) => t.replace("M: { red: 0, yellow: 1, green: 2 }", "M: { red: 0, yellow: 1, green: 12 }"),
      ],
      ["the module's link", (t) => t.replace("127.0.0.1:1502", "127.0.0.1:1503")],
      ["the module's watchdog", (t) => t.replace("watchdogMs: 1000", "watchdogMs: 1500")],
      ["the start-up", (t) => t.replace("flashSeconds: 3", "flashSeconds: 4")],
    ];
    for (const [what, edit] of edits) {
      const changed = fixture(edit).setup;
      expect(identityOf(changed).configDigest, what).not.toBe(base);
    }
  });

  it("covers the device layouts themselves, not just the intersection", () => {
    const { setup } = fixture();
    const { intersection, modules, detectorWiring } = setup.intersection;
    const moved = modules.map((m) => ({ ...m, unitId: m.unitId + 1 }));
    expect(configDigest(intersection, moved, detectorWiring)).not.toBe(
      configDigest(intersection, modules, detectorWiring),
    );
  });

  it("a plan's digest is the one it was compiled with; a plan without one gets its compiled form's", () => {
    const plan = fixture().setup.initialPlan;
    expect(planDigestOf(plan)).toBe(plan.digest);
    const { digest: _d, ...old } = plan;
    expect(planDigestOf(old)).toMatch(/^compiled:[0-9a-f]{64}$/);
    expect(planDigestOf({ ...old, cycleMs: old.cycleMs + 1000 })).not.toBe(planDigestOf(old));
  });
});

describe("how the last run ended, as the store proves it", () => {
  const now = identityOf(fixture().setup);
  const started = runStarted(now, Date.parse("2026-11-30T10:00:00Z"));

  it("no record: unknown", () => {
    expect(judgePreviousRun(null, now).previous).toBe("unknown");
  });

  it("a run that began and never recorded a clean stop ended abruptly", () => {
    const judged = judgePreviousRun(started, now);
    expect(judged.previous).toBe("ended-abruptly");
    expect(judged.why).toContain("did not stop cleanly");
  });

  it("a clean stop recorded: stopped-clean", () => {
    const judged = judgePreviousRun({ ...started, cleanStopAtWallMs: started.startedAtWallMs + 60_000 }, now);
    expect(judged.previous).toBe("stopped-clean");
    expect(judged.why).toContain("2026-11-30T10:01:00.000Z");
  });

  it("another configuration or another plan (id, version or content): unknown, whatever the stop, with the reason", () => {
    for (const cleanStopAtWallMs of [null, started.startedAtWallMs + 1]) {
      const record = { ...started, cleanStopAtWallMs };
      const other = judgePreviousRun({ ...record, configDigest: "0".repeat(64) }, now);
      expect(other.previous).toBe("unknown");
      expect(other.why).toContain("configuration changed");
      for (const plan of [
        { planId: "slow" },
        { planVersion: now.planVersion + 1 },
        { planDigest: "f".repeat(64) },
      ]) {
        const judged = judgePreviousRun({ ...record, ...plan }, now);
        expect(judged.previous, JSON.stringify(plan)).toBe("unknown");
        expect(judged.why).toContain("plan");
      }
    }
  });
});

describe("the run record in the store", () => {
  it("survives a reopen, holds one row, and a clean stop is only what was last written", () => {
    const dir = mkdtempSync(join(tmpdir(), "greenwave-run-record-"));
    dirs.push(dir);
    const now = identityOf(fixture().setup);
    let store = GatewayStore.open(dir);
    expect(store.runRecord()).toBeNull();
    store.setRunRecord({ ...runStarted(now, 1000), cleanStopAtWallMs: 2000 });
    store.close();
    store = GatewayStore.open(dir);
    expect(judgePreviousRun(store.runRecord(), now).previous).toBe("stopped-clean");
    // The next run begins: a crash from here on leaves "ended abruptly".
    store.setRunRecord(runStarted(now, 3000));
    store.close();
    store = GatewayStore.open(dir);
    expect(store.runRecord()).toEqual({ ...now, startedAtWallMs: 3000, cleanStopAtWallMs: null });
    expect(judgePreviousRun(store.runRecord(), now).previous).toBe("ended-abruptly");
    store.close();
  });
});
