import { planChangeRefusal } from "../core/sequencer.js";
import { isCompiledSchedule } from "../core/schedule/committed-change.js";
import type { ScheduleShell } from "../shell/schedule-shell.js";
import { recordSchedulePlans } from "./schedule-feature.js";
import { type CorridorBody, inboxTopic } from "../protocol/corridor-messages.js";
import { PROTOCOL_VERSION } from "../protocol/topics.js";
import type { ClockWatch } from "./clock-watch.js";
import type { GatewayParts } from "./gateway-parts.js";
import {
  type CorridorSettings,
  CorridorParticipant,
  DEFAULT_CORRIDOR_SETTINGS,
} from "./corridor-participant.js";

/** How often the participant's timers (inquiries while in doubt) are looked at. */
const PARTICIPANT_TICK_MS = 200;

/**
 * This intersection in the corridor protocol: its lease authority and 2PC participant
 * (corridor-participant.ts), fed from the inbox and the decision records, sending through the broker,
 * and handing committed plans — with their transaction id — to the controller.
 */
export function createCorridorParticipant(
  parts: GatewayParts,
  settings: CorridorSettings | undefined,
  isStopping: () => boolean,
  clockWatch: ClockWatch | null,
  schedule: ScheduleShell,
): CorridorParticipant {
  const { setup, store, runner, link, bus, audit, clock, log } = parts;
  const me = setup.intersection.intersection.id;
  const corridor = setup.corridor.raw.id;
  const send = (to: string, body: CorridorBody) => {
    // Nothing is queued while offline: the protocol resends and asks again.
    const envelope = { v: PROTOCOL_VERSION, from: me, to, sentAtWallMs: clock.now().wallMs, body };
    void link?.publish(inboxTopic(corridor, to, me), JSON.stringify(envelope)).catch(() => {});
  };
  return new CorridorParticipant(
    setup,
    store,
    clock,
    log,
    {
      send,
      schedulePlan: (change, txn) => {
        if (isCompiledSchedule(change)) {
          recordSchedulePlans(parts, change, txn.txnId);
          schedule.adopt(change, txn);
        } else {
          // Over a running schedule a manual change overrides it: the schedule's own waiting change
          // is withdrawn first, so that it cannot supersede this one at the same boundary.
          schedule.manual(change, txn);
          runner.dispatch({
            type: "schedule-plan",
            plan: change,
            activationWallMs: txn.activationWallMs,
            txnId: txn.txnId,
          });
        }
        bus.emit("changed");
      },
      planRefusal: (activationWallMs) =>
        planChangeRefusal(runner.controller.seq, activationWallMs, isStopping()) ??
        clockWatch?.refusal() ??
        null,
      withdrawPlan: (txnId, final) => {
        if (final) schedule.cancelManual(txnId);
        runner.dispatch({ type: "withdraw-plan", txnId });
        bus.emit("changed");
      },
      audit: (type, actor, detail) => audit.soon(type, actor, detail),
      changed: () => bus.emit("changed"),
    },
    withClockError(settings ?? DEFAULT_CORRIDOR_SETTINGS, clockWatch),
  );
}

/** The time service's offset estimate is this gateway's own knowledge of its clock error (the vote checks it). */
function withClockError(settings: CorridorSettings, clockWatch: ClockWatch | null): CorridorSettings {
  if (!clockWatch) return settings;
  return { ...settings, clockErrorMs: () => clockWatch.reading?.offsetMs ?? settings.clockErrorMs() };
}

/** The participant's timers, while the gateway runs. */
export function tickParticipant(participant: CorridorParticipant): NodeJS.Timeout {
  const timer = setInterval(() => participant.tick(), PARTICIPANT_TICK_MS);
  timer.unref();
  return timer;
}
