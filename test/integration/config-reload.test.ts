import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { loadIntersectionSetup } from "../../gateway/config/load.js";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { ConfigReload, setupInForce } from "../../gateway/node/config-reload.js";
import { GatewayNode } from "../../gateway/node/gateway-node.js";
import type { PlanCheck, PrepareBody } from "../../gateway/shell/corridor/participant-ports.js";
import { systemClock } from "../../gateway/shell/clock.js";
import { createLogger } from "../../gateway/shell/log.js";
import { GatewayStore } from "../../gateway/store/store.js";
import { fixtureFiles, writeFixtureFiles } from "../support/fixture-intersection.js";

/**
 * A SIGHUP reload against a real gateway node (gateway/node/config-reload.ts), in process: no modules
 * and no broker, the signal side exactly as it runs. Refusals leave the running configuration and say
 * why (log and audit); a takeable change is scheduled with the plan in force, compiled again, for the
 * controller's next cycle boundary, and later plans compile against it.
 */

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startNode() {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-reload-node-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const files = fixtureFiles('{ tcp: "127.0.0.1:1502" }');
  // No module: the node computes and checks the lamps, and drives nothing.
  files["x1.yaml"] = (files["x1.yaml"] as string).replace(/devices:[\s\S]*$/, "devices: []\n");
  writeFixtureFiles(dir, files);
  const file = join(dir, "x1.yaml");
  const setup = loadIntersectionSetup(file);
  const store = GatewayStore.open(join(dir, "data"));
  const lines: { level: number; msg: string; [key: string]: unknown }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  const log = createLogger("greenwave-gateway:x1", "info", sink);
  const reload = new ConfigReload(file, log);
  const node = await GatewayNode.start({
    ...{ setup, store, clock: systemClock, log, broker: null, http: null },
    features: [reload.feature],
  });
  cleanups.push(async () => {
    await node.stop("cut");
    store.close();
  });
  const edit = (change: (text: string) => string, name = "x1.yaml") => {
    const target = join(dir, name);
    writeFileSync(target, change(readFileSync(target, "utf8")));
  };
  const audits = (type: string) => store.events(0, 1000).filter((e) => e.type === type);
  return { file, setup, node, reload, edit, lines, audits };
}

const YELLOW_3 = "{ id: M, kind: vehicle, minGreenSeconds: 5, yellowSeconds: 3, redClearanceSeconds: 1 }";
const YELLOW_4 = YELLOW_3.replace("yellowSeconds: 3", "yellowSeconds: 4");

describe("SIGHUP reload of the intersection file, on a running gateway node", () => {
  it("refuses an invalid file and a change of groups with the reasons, and runs on unchanged", async () => {
    const { node, reload, edit, lines, audits, setup } = await startNode();
    const plan = node.runner.controller.seq.plan;

    expect(reload.reload()).toEqual({ outcome: "unchanged" });
    expect(lines.some((l) => l.msg.includes("no change to what the gateway runs by"))).toBe(true);

    edit((t) =>
      t.replace(
        "yellowSeconds: 3, redClearanceSeconds: 1 }\n  - { id: S",
        "yellowSeconds: 30, redClearanceSeconds: 1 }\n  - { id: S",
      ),
    );
    const invalid = reload.reload();
    expect(invalid.outcome).toBe("refused");
    const reasons = invalid.outcome === "refused" ? invalid.reasons.join("\n") : "";
    // Located as `config check` locates it: file:line:column: field: message.
    expect(reasons).toMatch(/x1\.yaml:7:\d+: groups\[0\]\.yellowSeconds: /);
    const refusedLine = lines.find((l) => l.msg.startsWith("reload of") && l.msg.includes("refused"));
    expect(refusedLine?.level).toBe(50);
    expect(refusedLine?.msg).toMatch(/x1\.yaml:7:\d+: groups\[0\]\.yellowSeconds/);
    expect(audits("config-reload-refused").at(-1)?.detail).toMatchObject({ kind: "invalid", by: "SIGHUP" });
    edit((t) => t.replace("yellowSeconds: 30", "yellowSeconds: 3"));

    const rename = (t: string) => t.replaceAll(/\bPM\b/g, "PX");
    edit(rename);
    edit(rename, "plans/fast.yaml");
    const groups = reload.reload();
    expect(groups.outcome).toBe("refused");
    const why = groups.outcome === "refused" ? groups.reasons.join("\n") : "";
    expect(why).toContain("the signal groups changed");
    expect(why).toContain("restart the gateway to take it");
    expect(audits("config-reload-refused").at(-1)?.detail).toMatchObject({ kind: "needs-restart" });

    // The groups as they were (both files).
    edit((t) => t.replaceAll(/\bPX\b/g, "PM"), "plans/fast.yaml");
    edit((t) => t.replaceAll(/\bPX\b/g, "PM"));

    // A longer walk lengthens what a clean stop must wait for (PS: 7 + 5 s → 8 + 5 s) beyond the bound
    // this run started with: refused, a stop must never cut a clearance at its bound.
    edit((t) =>
      t.replace(
        "walkSeconds: 7, pedestrianClearanceSeconds: 5 }\n  - { id: PM",
        "walkSeconds: 8, pedestrianClearanceSeconds: 5 }\n  - { id: PM",
      ),
    );
    const longer = reload.reload();
    expect(longer.outcome).toBe("refused");
    expect(longer.outcome === "refused" ? longer.reasons[0] : "").toMatch(
      /^it lengthens the longest minimum green or walk with its clearances \(a clean stop's bound\) from 12\.3 s to 13\.3 s/,
    );

    // Nothing was scheduled, nothing changed: the same plan and configuration run on.
    expect(node.runner.controller.seq.pending).toEqual([]);
    expect(node.runner.controller.seq.plan).toBe(plan);
    expect(setupInForce(setup)).toBe(setup);
    expect(audits("config-reloaded")).toEqual([]);
  });

  it("takes a changed yellow with the plan in force at the next boundary; later plans compile against it", async () => {
    const { node, reload, edit, lines, audits, setup } = await startNode();
    const before = node.runner.controller.seq.plan;
    edit((t) => t.replace(YELLOW_3, YELLOW_4));
    const outcome = reload.reload();
    expect(outcome).toEqual({
      outcome: "reloaded",
      changes: ["group M: yellow 3 s → 4 s"],
      plan: { id: before.planId, version: before.version },
    });
    const taken = lines.find((l) => l.msg.startsWith("reloaded"));
    expect(taken?.msg).toMatch(
      /takes effect with plan fast v1 (at the next cycle boundary|when the intersection next enters its cycle)/,
    );
    expect(audits("config-reloaded").at(-1)?.detail).toMatchObject({
      changes: ["group M: yellow 3 s → 4 s"],
      plan: { id: "fast", version: 1 },
    });

    // Scheduled like a plan change, for now, with the reloaded intersection; the plan's identity kept.
    const seq = node.runner.controller.seq;
    const waiting = seq.pending[0] ?? seq.next?.activation;
    expect(waiting?.plan).toMatchObject({
      planId: before.planId,
      version: before.version,
      digest: before.digest,
    });
    expect(waiting?.txnId).toBeNull();
    expect(
      waiting?.intersection?.groups[0]?.clearanceMs,
      "the reloaded intersection travels with the plan",
    ).toBe(4000);

    // Plans checked from now on (a corridor PREPARE, a schedule) compile against the reloaded file.
    expect(setupInForce(setup).intersection.intersection.groups[0]?.clearanceMs).toBe(4000);
    expect(setup.intersection.intersection.groups[0]?.clearanceMs).toBe(3000);

    // One change at a time: another SIGHUP before this one is in force is refused, saying when to retry.
    edit((t) => t.replace(YELLOW_4, YELLOW_4.replace("redClearanceSeconds: 1", "redClearanceSeconds: 2")));
    const second = reload.reload();
    expect(second.outcome).toBe("refused");
    expect(second.outcome === "refused" ? second.reasons[0] : "").toMatch(
      /plan fast v1 waits for its cycle boundary \(.*\): send SIGHUP again once it has taken effect/,
    );
  });

  it("takes a new name into the status at once (a name runs no lamp)", async () => {
    const { node, reload, edit } = await startNode();
    expect(node.status().name).toBe("Test St & Fast Ave");
    edit((t) => t.replace("name: Test St & Fast Ave", "name: Test St & First Ave"));
    const outcome = reload.reload();
    expect(outcome.outcome).toBe("reloaded");
    expect(outcome.outcome === "reloaded" ? outcome.changes : []).toContain(
      'name: "Test St & Fast Ave" → "Test St & First Ave"',
    );
    expect(node.status().name).toBe("Test St & First Ave");
  });

  it("a reload dropped before its boundary (replaced by another change for the same instant) is undone and said", async () => {
    const { node, reload, edit, lines, audits, setup } = await startNode();
    const plan = node.runner.controller.seq.plan;
    edit((t) => t.replace(YELLOW_3, YELLOW_4));
    expect(reload.reload().outcome).toBe("reloaded");
    const waiting = node.runner.controller.seq.pending[0];
    expect(waiting).toBeDefined();
    // Another change for the very same instant replaces the waiting one (a corner the core allows).
    node.dispatch({
      type: "schedule-plan",
      plan,
      activationWallMs: waiting?.activationWallMs ?? 0,
      txnId: null,
    });
    const dropped = await until("the gateway to notice the dropped reload", 5000, () =>
      lines.find((l) => l.msg.includes("did not come into force")),
    );
    expect(dropped.level).toBe(50);
    expect(dropped.msg).toContain("send SIGHUP again");
    expect(setupInForce(setup)).toBe(setup);
    await until("the audit entry", 2000, () => audits("config-reload-dropped").length > 0);
  });

  it("a corridor plan checked after the reload (a PREPARE) compiles against the reloaded file", async () => {
    const { node, reload, edit } = await startNode();
    // Main (M alone, 10 s) holds M's 5 + 3 + 1 s, but not its 5 + 6 + 1 s once reloaded (which the
    // configured plan, main with PS's 7 + 5 s, still holds).
    const tight = {
      kind: "plan",
      id: "tight",
      version: 1,
      corridor: "test-corridor",
      cycleSeconds: 36,
      intersections: {
        x1: {
          offsetSeconds: 0,
          coordinatedStage: "main",
          correction: { mode: "dwell", maxDwellPercent: 20 },
          stages: [
            { id: "main", groups: ["M"], splitSeconds: 10 },
            { id: "walk", groups: ["PS"], splitSeconds: 12.5 },
            { id: "side", groups: ["S", "PM"], splitSeconds: 13.5 },
          ],
        },
      },
    };
    const prepare = (txnId: string) =>
      ({
        type: "prepare",
        txnId,
        plan: { kind: "plan", id: "tight", version: 1 },
        planFile: tight,
      }) as unknown as PrepareBody;
    const { planCheck } = (node.participant as unknown as { ports: { planCheck: PlanCheck } }).ports;
    expect(planCheck.check(prepare("t1")).ok).toBe(true);

    edit((t) => t.replace(YELLOW_3, YELLOW_3.replace("yellowSeconds: 3", "yellowSeconds: 6")));
    expect(reload.reload().outcome).toBe("reloaded");
    const verdict = planCheck.check(prepare("t2"));
    expect(verdict.ok).toBe(false);
    expect(verdict.ok ? "" : verdict.reason).toContain(
      "stage main has a split of 10 s, shorter than the 12 s it needs",
    );
  });
});
