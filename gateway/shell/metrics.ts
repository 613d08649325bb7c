import { Counter, Gauge, Histogram, Registry } from "prom-client";

/**
 * One gateway's Prometheus metrics, in a registry of its own (the demo runs several gateways in
 * one process), every series labelled with the intersection.
 */
export interface MetricSources {
  outboxDepth(): number;
  outboxDropped(): number;
  faultLatched(): boolean;
  /** False while a latched fault is held in memory only. */
  latchDurable(): boolean;
  mode(): string;
  plan(): { readonly id: string; readonly version: number };
  /** The current stage's id, or null outside coordinated operation. */
  stage(): string | null;
  offsetErrorMs(): number;
  inStep(): boolean;
  /** Where the cycle in force is: seconds since its start, and its length (lengthened or shortened); null outside coordinated operation. */
  cycle(): { readonly secondsIn: number; readonly lengthSeconds: number } | null;
  /** Each detector's id and why it is failed now (null: it works). */
  detectors(): readonly { readonly id: string; readonly failed: string | null }[];
}

export const MODES = ["startup", "coordinated", "transition", "hold", "flash", "stopping", "fault"] as const;

export function createGatewayMetrics(intersection: string, sources: MetricSources) {
  const registry = new Registry();
  registry.setDefaultLabels({ intersection });
  const registers = [registry];
  return {
    registry,
    ...signalMetrics(registers),
    ...modbusMetrics(registers),
    ...networkMetrics(registers),
    ...stateMetrics(registers, sources),
    ...clockMetrics(registers),
    ...hiResMetrics(registers),
  };
}

/** The high-resolution event log (node/hires-log.ts): rows written, and what its bounds cost. */
function hiResMetrics(registers: Registers) {
  return {
    hiResEvents: new Counter({
      name: "greenwave_hires_events_total",
      help: "High-resolution event log rows recorded",
      registers,
    }),
    hiResDropped: new Counter({
      name: "greenwave_hires_dropped_total",
      help: "Event log rows dropped unwritten: the store refused them for longer than the memory bound",
      registers,
    }),
    hiResPruned: new Counter({
      name: "greenwave_hires_pruned_total",
      help: "Oldest event log rows pruned from the store to keep it within its bound",
      registers,
    }),
  };
}

/** The cabinet's clock, on which the green wave's offsets stand (set by the clock feature). */
function clockMetrics(registers: Registers) {
  return {
    clockSynchronised: new Gauge({
      name: "greenwave_clock_synchronised",
      help: "1 while the system clock is synchronised (NTP or chrony), 0 when it is known not to be, -1 when unknown",
      registers,
    }),
    clockOffset: new Gauge({
      name: "greenwave_clock_offset_seconds",
      help: "The time service's estimate of the system clock's offset (absent when it gives none)",
      registers,
    }),
  };
}

type Registers = Registry[];

/** The lamp loop: ticks, their lateness, missed ticks, clean stops. */
function signalMetrics(registers: Registers) {
  return {
    ticks: new Counter({ name: "greenwave_ticks_total", help: "Output ticks run", registers }),
    tickLateness: new Histogram({
      name: "greenwave_tick_lateness_seconds",
      help: "How late a tick started against its fixed grid",
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30],
      registers,
    }),
    ticksMissed: new Counter({
      name: "greenwave_ticks_missed_total",
      help: "Tick grid slots that passed with no tick (a stalled event loop, or a bus slower than the tick)",
      registers,
    }),
    stops: new Counter({
      name: "greenwave_stops_total",
      help: "Clean stops by outcome (clean: all-red reached; bound-exceeded; cut: a second stop request)",
      labelNames: ["outcome"] as const,
      registers,
    }),
  };
}

/** The I/O modules: exchange time and failures by device and kind. */
function modbusMetrics(registers: Registers) {
  return {
    modbusExchange: new Histogram({
      name: "greenwave_modbus_exchange_seconds",
      help: "A tick's write and readback of one module (by device), end to end, queueing on a shared bus included",
      labelNames: ["device"] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers,
    }),
    modbusErrors: new Counter({
      name: "greenwave_modbus_errors_total",
      help: "Failed Modbus exchanges by device and kind (timeout, crc, exception, invalid-answer, link, overload, protocol)",
      labelNames: ["device", "kind"] as const,
      registers,
    }),
  };
}

/** The broker: connection, what came in and was refused or dropped, commands carried out. */
function networkMetrics(registers: Registers) {
  return {
    inboundDropped: new Counter({
      name: "greenwave_inbound_dropped_total",
      help: "Incoming MQTT messages dropped before any work: by class (command, corridor, decision) and reason (queue-full, rate-limited, retained)",
      labelNames: ["class", "reason"] as const,
      registers,
    }),
    mqttConnected: new Gauge({
      name: "greenwave_mqtt_connected",
      help: "1 while connected to the broker",
      registers,
    }),
    mqttReconnects: new Counter({
      name: "greenwave_mqtt_reconnects_total",
      help: "Reconnections to the broker",
      registers,
    }),
    mqttRejected: new Counter({
      name: "greenwave_mqtt_rejected_total",
      help: "Incoming messages refused (too-large, not-json, unsupported-version, unknown-command, invalid, refused)",
      labelNames: ["reason"] as const,
      registers,
    }),
    commands: new Counter({
      name: "greenwave_commands_total",
      help: "Operator commands carried out",
      labelNames: ["command"] as const,
      registers,
    }),
  };
}

/** The gateway's state, read when scraped: outbox, transactions, fault, mode. */
function stateMetrics(registers: Registers, sources: MetricSources) {
  return {
    outboxDepth: new Gauge({
      name: "greenwave_outbox_depth",
      help: "Messages waiting for the broker",
      registers,
      collect() {
        this.set(sources.outboxDepth());
      },
    }),
    outboxDropped: new Gauge({
      name: "greenwave_outbox_dropped",
      help: "Messages dropped from a full outbox (oldest first), since the store was created",
      registers,
      collect() {
        this.set(sources.outboxDropped());
      },
    }),
    transactions: new Counter({
      name: "greenwave_transactions_total",
      help: "Corridor plan transactions by outcome",
      labelNames: ["outcome"] as const,
      registers,
    }),
    faultLatched: new Gauge({
      name: "greenwave_fault_latched",
      help: "1 while a fault is latched",
      registers,
      collect() {
        this.set(sources.faultLatched() ? 1 : 0);
      },
    }),
    latchNotDurable: new Gauge({
      name: "greenwave_fault_latch_not_durable",
      help: "1 while a latched fault is held in memory only (its store write failed; retried): a restart now would lose it",
      registers,
      collect() {
        this.set(sources.latchDurable() ? 0 : 1);
      },
    }),
    plan: new Gauge({
      name: "greenwave_plan_in_force",
      help: "1 for the plan (id, version) the controller runs",
      labelNames: ["plan", "version"] as const,
      registers,
      collect() {
        const plan = sources.plan();
        this.reset();
        this.set({ plan: plan.id, version: String(plan.version) }, 1);
      },
    }),
    stage: new Gauge({
      name: "greenwave_stage",
      help: "1 for the stage the plan's cycle is in (outside coordinated operation: none)",
      labelNames: ["stage"] as const,
      registers,
      collect() {
        this.reset();
        this.set({ stage: sources.stage() ?? "none" }, 1);
      },
    }),
    offsetError: new Gauge({
      name: "greenwave_offset_error_seconds",
      help: "At the last cycle start, how far the cycle started from where the plan's offset puts it (positive: late); the correction spreads it over the next cycles",
      registers,
      collect() {
        this.set(sources.offsetErrorMs() / 1000);
      },
    }),
    inStep: new Gauge({
      name: "greenwave_in_step",
      help: "1 while the cycle is within the in-step tolerance of the plan's offset (the green wave holds here)",
      registers,
      collect() {
        this.set(sources.inStep() ? 1 : 0);
      },
    }),
    cycleSecond: new Gauge({
      name: "greenwave_cycle_second",
      help: "Seconds since the cycle in force began (with greenwave_cycle_length_seconds: where the intersection is in its cycle); absent outside coordinated operation",
      registers,
      collect() {
        this.reset();
        const cycle = sources.cycle();
        if (cycle) this.set(cycle.secondsIn);
      },
    }),
    cycleLength: new Gauge({
      name: "greenwave_cycle_length_seconds",
      help: "The length of the cycle in force, as the offset correction lengthened or shortened it; absent outside coordinated operation",
      registers,
      collect() {
        this.reset();
        const cycle = sources.cycle();
        if (cycle) this.set(cycle.lengthSeconds);
      },
    }),
    detectorFailed: new Gauge({
      name: "greenwave_detector_failed",
      help: "1 while a detector is failed (its groups on recall), by detector and diagnostic (reason); 0 while it works",
      labelNames: ["detector", "reason"] as const,
      registers,
      collect() {
        this.reset();
        for (const d of sources.detectors())
          this.set({ detector: d.id, reason: d.failed ?? "none" }, d.failed ? 1 : 0);
      },
    }),
    stageTerminations: new Counter({
      name: "greenwave_stage_terminations_total",
      help: "Actuated stages ended, by stage and how: gap-out, max-out, force-off",
      labelNames: ["stage", "reason"] as const,
      registers,
    }),
    mode: new Gauge({
      name: "greenwave_mode",
      help: "1 for the controller's current mode",
      labelNames: ["mode"] as const,
      registers,
      collect() {
        const current = sources.mode();
        for (const mode of MODES) this.set({ mode }, current === mode ? 1 : 0);
      },
    }),
  };
}

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;
