import type { IntersectionSetup } from "../config/load.js";
import { ASPECT_LABEL } from "../core/lamps.js";
import { IN_STEP_TOLERANCE_MS } from "../core/model.js";
import type { SignalEvent } from "../core/sequencer.js";
import type { GatewayNode } from "../node/gateway-node.js";
import type { Display } from "../node/runner-hooks.js";
import { describeOffsetError } from "./status-view.js";

/** The demo's picture of one intersection: a line per lamp change, signal events, faults. */
export function demoDisplay(
  setup: IntersectionSetup,
  name: string,
  node: () => GatewayNode | null,
  print: (line: string) => void,
  stamp: () => string,
): Display {
  const intersection = setup.intersection.intersection;
  let lastLine = "";
  return {
    writeOutputs(aspects) {
      const seq = node()?.runner.controller.seq;
      const stage = seq?.mode === "running" ? (seq.plan.stages[seq.stage]?.id ?? "") : "";
      const line = `${(node()?.runner.mode ?? "startup").padEnd(11)} ${(seq?.plan.planId ?? setup.initialPlan.planId).padEnd(9)} ${stage.padEnd(6)} ${aspects
        .map((a, i) => `${intersection.groups[i]?.id}:${ASPECT_LABEL[a]}`.padEnd(6))
        .join(" ")}`;
      const key = line.replaceAll("*", "");
      if (key !== lastLine) {
        lastLine = key;
        print(`${stamp()} ${name} ${line}`);
      }
    },
    onSignal(event: SignalEvent) {
      // A signal comes after the state it reports: the cycle that starts is the plan in force now.
      const text = describeSignal(event, node()?.runner.controller.seq.plan.cycleMs ?? null);
      if (text) print(`${stamp()} ${name} ${text}`);
    },
    onFault(latch) {
      print(`${stamp()} ${name} FAULT ${latch.kind}: ${latch.message}`);
    },
  };
}

export function describeSignal(event: SignalEvent, cycleMs: number | null): string | null {
  switch (event.type) {
    case "mode":
      return `mode ${event.previous} -> ${event.mode}`;
    case "cycle-start":
      return describeCycleStart(event, cycleMs);
    case "plan-activated":
      return `plan ${event.planId} v${event.version} in force (${seconds(event.lateByMs)} s after its activation instant)`;
    case "plan-scheduled":
      return `plan ${event.planId} scheduled for ${new Date(event.activationWallMs).toISOString()}`;
    case "plan-superseded":
      return `plan ${event.planId} superseded by ${event.by}`;
    case "plan-rejected":
      return `plan ${event.planId} rejected: ${event.reason}`;
    case "plan-withdrawn":
      return `plan ${event.planId} withdrawn before it took effect (${event.txnId})`;
    case "detector-failed":
      return event.message;
    case "detector-restored":
      return `detector #${event.detector + 1} behaves again: its groups leave recall`;
    case "hold":
      return event.held
        ? `maintenance hold of stage ${event.stage} by ${event.by}`
        : `maintenance hold of stage ${event.stage} ended (${event.reason})`;
    case "start-up":
      return `start-up ${event.how}: ${event.reason}`;
    case "stage-start":
    case "stage-terminated":
    case "detector":
      return null;
  }
}

/**
 * A cycle start in words, with its sign convention spelled out: the offset error as the metric
 * greenwave_offset_error_seconds has it (positive: late), and what the correction does with it. A late
 * cycle may be lengthened (dwell mode only lengthens): it then waits for the next offset point, a
 * cycle less the lateness away, and the next cycles start early by what is left.
 */
export function describeCycleStart(
  event: Extract<SignalEvent, { type: "cycle-start" }>,
  cycleMs: number | null,
): string | null {
  const { offsetErrorMs: error, correctionMs: correction } = event;
  if (event.entered !== undefined)
    return `entered the cycle of ${event.planId} at stage ${event.entered}, where the clock puts it: in step`;
  if (error === 0 && correction === 0) return null;
  const inStep = Math.abs(error) <= IN_STEP_TOLERANCE_MS;
  const when = Math.abs(error) < 50 ? "on time" : describeOffsetError(error);
  const started = `cycle of ${event.planId} started ${when} (offset error ${signedSeconds(error)} s${inStep ? ", in step" : ""})`;
  if (correction === 0) return `${started}; no correction`;
  const lengthen = correction > 0;
  const change = `${lengthen ? "lengthening" : "shortening"} it by ${seconds(Math.abs(correction))} s`;
  if (inStep || cycleMs === null) return `${started}: ${change}`;
  // The offset point (an ideal cycle start) the correction heads for: ahead when it lengthens (the
  // cycle waits for it), behind when it shortens (the cycle catches up with it).
  const distance = lengthen ? (error < 0 ? -error : cycleMs - error) : error > 0 ? error : cycleMs + error;
  const goal = lengthen
    ? `to wait for the offset point ${seconds(distance)} s ahead`
    : `to catch up with the offset point ${seconds(distance)} s behind`;
  const left = distance - Math.abs(correction);
  const after =
    left <= IN_STEP_TOLERANCE_MS
      ? "in step from the next cycle"
      : `${seconds(left)} s left for the next cycles`;
  return `${started}: ${change} ${goal}; ${after}`;
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}

/** With its sign, as greenwave_offset_error_seconds has it; none when it rounds to nothing. */
function signedSeconds(ms: number): string {
  const size = seconds(Math.abs(ms));
  return size === "0.0" ? size : `${ms > 0 ? "+" : "-"}${size}`;
}
