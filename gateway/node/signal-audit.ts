import { describeChannel, LAMP_WORDS, type LampTestState, lampTestReport } from "../core/lamp-test.js";
import type { GatewayParts } from "./gateway-parts.js";
import { degradeOnStoreFailure } from "./store-guard.js";

/**
 * What the controller does, in the log and the audit trail: faults and resets audited at once
 * (forced), plan and mode changes soon (informational), a plan taking effect together with the plan in
 * force (one transaction), cycles and stages logged only.
 */
export function registerSignalAudit(parts: GatewayParts): void {
  const { bus, audit, store, clock, log } = parts;
  bus.on("fault", (latch) => {
    log.error({ latch }, `FAULT latched, intersection in flash: ${latch.message}`);
    audit.now("fault-latched", null, { kind: latch.kind, message: latch.message, groups: latch.groups });
  });
  bus.on("reset", ({ by }) => {
    log.warn({ by }, "fault reset by operator");
    audit.now("fault-reset", by, {});
  });
  bus.on("signal", (event) => {
    switch (event.type) {
      case "start-up":
        // The gateway logs and audits its start-up decision in words, with what the store proved
        // (gateway-node.ts, gateway-started): here, debug only.
        log.debug({ event }, event.type);
        return;
      case "stage-start":
      case "stage-terminated":
      case "detector":
        // Many a cycle: the high-resolution event log keeps them (hires-log.ts); here, debug only.
        log.debug({ event }, event.type);
        return;
      case "detector-failed":
        log.warn({ event }, event.message);
        audit.soon(event.type, null, {
          detector: event.detector,
          reason: event.reason,
          recall: event.recall,
          message: event.message,
        });
        return;
      case "hold": {
        const text = event.held
          ? `maintenance hold: stage ${event.stage} held (by ${event.by})`
          : `maintenance hold of stage ${event.stage} ended: ${HOLD_ENDS[event.reason]}`;
        log.warn({ event }, text);
        audit.soon("hold", event.by, { held: event.held, stage: event.stage, reason: event.reason });
        return;
      }
      case "cycle-start":
        // Once a cycle: logged, not audited (the audit trail is for changes).
        log.info({ event }, event.type);
        return;
      case "plan-activated": {
        // The plan in force and its audit event in one transaction: a reader (or a crash) sees both or
        // neither. A store failure rolls both back (and is degraded outside the transaction).
        const { type, ...detail } = event;
        degradeOnStoreFailure(
          log,
          `plan ${event.planId} v${event.version} in force but not recorded`,
          () =>
            store.atomically(() => {
              store.setPlanInForce({
                planId: event.planId,
                version: event.version,
                sinceWallMs: clock.now().wallMs,
                activationWallMs: event.activationWallMs,
              });
              audit.within(type, null, detail);
            }),
          undefined,
        );
        audit.committed();
        log.info({ event }, event.type);
        return;
      }
      default: {
        log.info({ event }, event.type);
        const { type, ...detail } = event;
        audit.soon(type, null, detail);
      }
    }
  });
  registerLampTestAudit(parts);
}

const HOLD_ENDS: Record<"operator" | "expired" | "flash" | "stop" | "fault", string> = {
  operator: "released by the operator; the sequence goes on from it",
  expired: "its time ran out; the sequence goes on from it",
  flash: "the intersection went to flash",
  stop: "the gateway is stopping",
  fault: "a fault latched",
};

/**
 * The lamp walk test in the log and the audit trail: each lamp's verdict as it is found (informational)
 * and the end with its summary (forced). The test is the controller's state (core/lamp-test.ts); it is
 * read after every tick's outputs, so nothing it reports is missed.
 */
function registerLampTestAudit(parts: GatewayParts): void {
  const { bus, audit, log, runner } = parts;
  let seen: { test: LampTestState; results: number; ended: boolean } | null = null;
  bus.on("outputs", () => {
    const test = runner.controller.lamp;
    if (!test) return;
    if (!seen || seen.test.id !== test.id || seen.test.startedWallMs !== test.startedWallMs) {
      seen = { test, results: 0, ended: false };
      log.warn({ by: test.by, stepMs: test.stepMs }, `lamp test started by ${test.by}: every lamp in turn`);
    }
    const intersection = runner.controller.seq.intersection;
    for (const result of test.results.slice(seen.results)) {
      const channel = test.channels[seen.results];
      const text = `lamp test: ${channel ? describeChannel(intersection, channel) : `${result.group} ${LAMP_WORDS[result.lamp]}`} ${VERDICT_WORDS[result.verdict]}${result.others.length > 0 ? ` (${result.others.join(", ")} lit)` : ""}`;
      (result.verdict === "ok" ? log.info.bind(log) : log.warn.bind(log))({ result }, text);
      audit.soon("lamp-test-lamp", test.by, { ...result, others: [...result.others] });
      seen.results++;
    }
    seen.test = test;
    if (test.end && !seen.ended) {
      seen.ended = true;
      const report = lampTestReport(test, intersection);
      const notOk = report.results.filter((r) => r.verdict !== "ok");
      log.warn({ end: test.end }, `lamp test ${report.message}`);
      audit.now("lamp-test-ended", test.end.kind === "aborted" ? test.end.by : test.by, {
        outcome: report.state,
        tested: report.results.length,
        lamps: report.channels,
        notOk: notOk.map((r) => `${r.group} ${LAMP_WORDS[r.lamp]}: ${r.verdict}`),
        message: report.message,
      });
    }
  });
}

const VERDICT_WORDS: Record<"ok" | "no-current" | "other-lamp-lit" | "not-read", string> = {
  ok: "ok",
  "no-current": "NO CURRENT (dead lamp, open load or channel not wired)",
  "other-lamp-lit": "OTHER LAMP LIT (crossed or stuck channel)",
  "not-read": "not read back (no feedback)",
};
