import { cyclePosition } from "../core/cycle-position.js";
import type { OutputStage } from "../../devices/output-stage.js";
import type { SequencerState } from "../core/sequencer-types.js";
import type { RunnerHooks } from "../shell/intersection-runner.js";
import type { Clock } from "../shell/clock.js";
import type { Logger } from "../shell/log.js";
import type { GatewayMetrics } from "../shell/metrics.js";
import { describeTickReport, TickWatch } from "../shell/tick-watch.js";
import type { GatewayBus } from "./gateway-bus.js";

export type Display = Pick<RunnerHooks, "writeOutputs" | "onSignal" | "onFault">;

/**
 * The runner's hooks: what the signal side tells the rest of the gateway. Outputs, signals, faults and
 * resets go to the bus (and the demo's display); each tick's timing and the Modbus exchange to the
 * metrics and the tick watch.
 */
export function runnerHooks(
  outputs: OutputStage,
  bus: GatewayBus,
  metrics: GatewayMetrics,
  clock: Clock,
  log: Logger,
  tickMs: number,
  display: Display,
): RunnerHooks {
  const tickWatch = new TickWatch(tickMs, (report) =>
    log.warn({ ...report, tickMs }, describeTickReport(report, tickMs)),
  );
  // Whether the last exchange reached every module: the service watchdog's proof that the bus lives.
  let answered: boolean | null = null;
  const failureSnapshot = new Map<string, Record<string, number>>();
  const countModbusErrors = () => {
    for (const { client } of outputs.modules) {
      const previous = failureSnapshot.get(client.deviceId) ?? {};
      for (const [kind, count] of Object.entries(client.counters.failures)) {
        const delta = count - (previous[kind] ?? 0);
        if (delta > 0) metrics.modbusErrors.inc({ device: client.deviceId, kind }, delta);
      }
      failureSnapshot.set(client.deviceId, { ...client.counters.failures });
    }
  };
  return {
    writeOutputs: (aspects, lamps) => {
      metrics.ticks.inc();
      display.writeOutputs?.(aspects, lamps);
      bus.emit("outputs", { aspects });
      bus.emit("changed");
    },
    exchange: async (lamps) => {
      const result = await outputs.exchange(lamps);
      // A module found dropped by its own watchdog (reported lost, not written) has not answered either.
      answered = outputs.layouts.length === 0 ? null : result.errors.length === 0 && result.lost.length === 0;
      for (const [device, ms] of result.durationsMs) metrics.modbusExchange.observe({ device }, ms / 1000);
      countModbusErrors();
      return result;
    },
    onSignal: (event) => {
      if (event.type === "stage-terminated")
        metrics.stageTerminations.inc({ stage: event.stage, reason: event.reason });
      display.onSignal?.(event);
      bus.emit("signal", event);
    },
    onFault: (latch) => {
      display.onFault?.(latch);
      bus.emit("fault", latch);
    },
    onReset: (by) => bus.emit("reset", { by }),
    onStoreError: (message) => log.error(message),
    onTickDone: (tick) => {
      metrics.tickLateness.observe(tick.latenessMs / 1000);
      if (tick.missedTicks > 0) metrics.ticksMissed.inc(tick.missedTicks);
      tickWatch.record(clock.now().monoMs, tick);
      bus.emit("tick", { answered });
    },
  };
}

/** What the metrics read of the sequencer when scraped: plan in force, stage, cycle position, offset error, in step. */
export function sequencerMetricSources(seq: () => SequencerState, nowMonoMs: () => number) {
  return {
    cycle: () => {
      const position = cyclePosition(seq());
      return position
        ? {
            secondsIn: Math.max(0, nowMonoMs() - position.startedMonoMs) / 1000,
            lengthSeconds: position.lengthMs / 1000,
          }
        : null;
    },
    plan: () => ({ id: seq().plan.planId, version: seq().plan.version }),
    stage: () => {
      const s = seq();
      return s.mode === "running" ? (s.plan.stages[s.stage]?.id ?? null) : null;
    },
    offsetErrorMs: () => seq().offsetErrorMs,
    inStep: () => seq().inStep,
  };
}
