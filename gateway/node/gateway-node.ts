import { dirname } from "node:path";
import { OutputStage } from "../../devices/output-stage.js";
import { ConfigError } from "../config/errors.js";
import { type IntersectionSetup, type LoadedPlan, loadPlanData } from "../config/load.js";
import type { ControllerEvent } from "../core/controller.js";
import { DEFAULT_COORDINATOR_CONFIG } from "../core/corridor/coordinator.js";
import type { IntersectionPlan, Lamps } from "../core/model.js";
import type { FaultLatch } from "../core/monitor.js";
import { hasRoomForPlan, MAX_PENDING_PLANS, type SignalEvent, stopBoundMs } from "../core/sequencer.js";
import {
  type CorridorBody,
  decisionFilter,
  decisionRecordSchema,
  inboxFilter,
  inboxTopic,
  parseCorridorMessage,
} from "../protocol/corridor-messages.js";
import { type Command, parsePayload, parseCommand, type Reply, type Status } from "../protocol/messages.js";
import { classifyInbound } from "../protocol/inbound-routes.js";
import { intersectionTopics, PROTOCOL_VERSION } from "../protocol/topics.js";
import type { Clock } from "../shell/clock.js";
import { type HttpEndpoint, startHttpEndpoint } from "../shell/http-server.js";
import { IntersectionRunner, type RunnerHooks, type StopOutcome } from "../shell/intersection-runner.js";
import type { Logger } from "../shell/log.js";
import { createGatewayMetrics, type GatewayMetrics } from "../shell/metrics.js";
import { DropWatch } from "../shell/drop-watch.js";
import { type DropReason, type InboundClass, InboundQueue } from "../shell/inbound-queue.js";
import { MqttSession } from "../shell/mqtt-session.js";
import { describeTickReport, TickWatch } from "../shell/tick-watch.js";
import { type GatewayStore, StoreError } from "../store/store.js";
import { CoordinatorHost, coordinatePush } from "./coordinator-host.js";
import { CoordinatorStore } from "../store/coordinator-store.js";
import { decideCommand } from "./commands.js";
import {
  type CorridorSettings,
  CorridorParticipant,
  DEFAULT_CORRIDOR_SETTINGS,
} from "./corridor-participant.js";
import { OutboxFlusher } from "./outbox-flusher.js";

export interface BrokerSettings {
  readonly url: string;
  readonly username?: string;
  readonly password?: string;
  readonly ca?: string | Buffer;
}

export interface GatewayNodeOptions {
  readonly setup: IntersectionSetup;
  readonly store: GatewayStore;
  readonly clock: Clock;
  readonly log: Logger;
  readonly tickMs?: number;
  /** null: no broker at all (the signal side runs the same). */
  readonly broker: BrokerSettings | null;
  /** null: no HTTP endpoint. */
  readonly http: { readonly host: string; readonly port: number } | null;
  readonly corridor?: CorridorSettings;
  /** Extra observers of the signal side (the demo's display). */
  readonly display?: Pick<RunnerHooks, "writeOutputs" | "onSignal" | "onFault">;
}

interface AuditEntry {
  readonly type: string;
  readonly actor: string | null;
  readonly detail: Record<string, unknown>;
  readonly atWallMs: number;
}

/** Room above the clearances themselves for a clean stop: exchanges with a slow module, a late tick. */
const STOP_EXCHANGE_ALLOWANCE_MS = 2000;

/** Deferred audit entries written at once past this many (a burst of signals): bounded memory. */
const MAX_DEFERRED_AUDIT = 256;

/**
 * Informational audit entries are written without their own fsync; at most this long later they are
 * forced to disk (if no forced write of the protocol did it first) and only then published.
 */
export const AUDIT_SYNC_DELAY_MS = 500;

/**
 * One gateway: its intersection's controller driving the I/O modules, and around it the store, the
 * MQTT session (status, events through the outbox, operator commands) and the HTTP endpoint. The
 * signal side never waits for the network: MQTT and HTTP only observe it and feed it commands.
 */
export class GatewayNode {
  readonly metrics: GatewayMetrics;
  readonly runner: IntersectionRunner;
  readonly topics: ReturnType<typeof intersectionTopics>;
  readonly corridorId: string;
  readonly intersectionId: string;
  private readonly session: MqttSession | null;
  private readonly flusher: OutboxFlusher | null;
  private http: HttpEndpoint | null = null;
  private lastStatusKey = "";
  private readonly position: number;
  private readonly failureSnapshot = new Map<string, Record<string, number>>();
  private stopped = false;
  private readonly tickWatch: TickWatch;
  /** What arrives from the broker waits here, bounded and rate-limited, off the lamp loop's path. */
  private readonly inbound: InboundQueue | null;
  private readonly dropWatch: DropWatch;
  /** A clean stop is running its clearances: the gateway votes no and says "stopping". */
  private stopping = false;
  readonly participant: CorridorParticipant;
  private corridorTimer: NodeJS.Timeout | null = null;
  private lastActivation: { txnId: string; lateByMs: number } | null = null;
  private pendingTxnPlans = new Map<string, string>();
  /**
   * Any gateway on a broker can coordinate a corridor plan change (`plan-push`): its decision log sits
   * beside its store.
   */
  private readonly coordinatorLog: CoordinatorStore | null;
  private readonly coordinator: CoordinatorHost | null;
  private coordinatorTimer: NodeJS.Timeout | null = null;
  /** Audit entries waiting for the end of this turn (`auditSoon`). */
  private readonly deferredAudit: AuditEntry[] = [];
  private auditSyncTimer: NodeJS.Timeout | null = null;
  /** The plan push this gateway coordinates, if any: one at a time. */
  private pushing: string | null = null;

  private constructor(
    private readonly options: GatewayNodeOptions,
    private readonly outputs: OutputStage,
  ) {
    const { setup, store, clock, log } = options;
    const intersection = setup.intersection.intersection;
    this.intersectionId = intersection.id;
    this.corridorId = setup.corridor.raw.id;
    this.position = Math.max(
      0,
      setup.corridor.raw.intersections.findIndex((member) => member.id === intersection.id),
    );
    this.topics = intersectionTopics(this.corridorId, this.intersectionId);
    this.metrics = createGatewayMetrics(intersection.id, {
      outboxDepth: () => this.safely(() => store.outboxDepth(), 0),
      outboxDropped: () => this.safely(() => store.outboxDropped, 0),
      faultLatched: () => this.latch !== null,
      latchDurable: () => this.runner.latchDurable,
      mode: () => this.runner.mode,
    });
    this.dropWatch = new DropWatch(
      (summary) =>
        log.warn(
          { dropped: summary },
          "incoming messages dropped before any work (rate limit, full queue or retained command): see greenwave_inbound_dropped_total",
        ),
      () => clock.now().monoMs,
    );
    const display = options.display ?? {};
    const tickMs = options.tickMs ?? 100;
    this.tickWatch = new TickWatch(tickMs, (report) =>
      log.warn({ ...report, tickMs }, describeTickReport(report, tickMs)),
    );
    this.runner = new IntersectionRunner(
      intersection,
      planInForce(setup, store, log),
      clock,
      store,
      {
        writeOutputs: (aspects, lamps) => {
          this.metrics.ticks.inc();
          display.writeOutputs?.(aspects, lamps);
          this.publishStatusIfChanged();
        },
        exchange: async (lamps) => {
          const result = await outputs.exchange(lamps);
          this.countModbusErrors();
          return result;
        },
        onSignal: (event) => {
          display.onSignal?.(event);
          this.onSignal(event);
        },
        onFault: (latch) => {
          display.onFault?.(latch);
          log.error({ latch }, `FAULT latched, intersection in flash: ${latch.message}`);
          this.audit("fault-latched", null, {
            kind: latch.kind,
            message: latch.message,
            groups: latch.groups,
          });
        },
        onReset: (by) => {
          log.warn({ by }, "fault reset by operator");
          this.audit("fault-reset", by, {});
        },
        onStoreError: (message) => log.error(message),
        onTickDone: (tick) => {
          this.metrics.tickLateness.observe(tick.latenessMs / 1000);
          if (tick.missedTicks > 0) this.metrics.ticksMissed.inc(tick.missedTicks);
          if (this.outputs.layouts.length > 0) this.metrics.modbusExchange.observe(tick.exchangeMs / 1000);
          this.tickWatch.record(clock.now().monoMs, tick);
        },
      },
      tickMs,
    );
    this.participant = new CorridorParticipant(
      setup,
      store,
      clock,
      log,
      {
        send: (to, body) => this.sendCorridor(to, body),
        schedulePlan: (plan, activationWallMs, txnId) => {
          this.pendingTxnPlans.set(`${plan.planId}@${plan.version}`, txnId);
          this.dispatch({ type: "schedule-plan", plan, activationWallMs });
        },
        planRefusal: (activationWallMs) =>
          this.stopping
            ? "this gateway is stopping: it takes no plan change"
            : hasRoomForPlan(this.runner.controller.seq, activationWallMs)
              ? null
              : `${MAX_PENDING_PLANS} plan changes already wait for their instants here; push again once the first has taken effect`,
        audit: (type, actor, detail) => this.auditSoon(type, actor, detail),
        changed: () => this.publishStatusIfChanged(),
      },
      options.corridor ?? DEFAULT_CORRIDOR_SETTINGS,
    );
    this.coordinatorLog = options.broker ? CoordinatorStore.open(dirname(store.file)) : null;
    this.coordinator = this.coordinatorLog
      ? new CoordinatorHost(
          this.intersectionId,
          this.corridorId,
          DEFAULT_COORDINATOR_CONFIG,
          this.coordinatorLog,
          (topic, payload, publishOptions) => {
            // Like the participant: nothing is queued while offline; the protocol resends and asks.
            if (!this.session?.connected) return;
            this.session
              .publish(topic, payload, { qos: 1, retain: publishOptions.retain ?? false })
              .catch(() => {});
          },
          () => clock.now(),
        )
      : null;
    if (options.broker) {
      const broker = options.broker;
      this.session = new MqttSession(
        {
          url: broker.url,
          clientId: `greenwave-${this.corridorId}-${this.intersectionId}`,
          ...(broker.username !== undefined ? { username: broker.username } : {}),
          ...(broker.password !== undefined ? { password: broker.password } : {}),
          ...(broker.ca !== undefined ? { ca: broker.ca } : {}),
          will: {
            topic: this.topics.availability,
            payload: JSON.stringify({ v: PROTOCOL_VERSION, online: false, reason: "connection lost" }),
            retain: true,
          },
          subscriptions: [
            this.topics.commandFilter,
            inboxFilter(this.corridorId, this.intersectionId),
            decisionFilter(this.corridorId),
          ],
        },
        {
          onConnect: () => this.onConnect(),
          onDisconnect: (reason) => {
            this.metrics.mqttConnected.set(0);
            log.warn({ reason }, "broker connection lost; lamps unaffected, events kept in the outbox");
          },
          onMessage: (topic, payload, retained) => this.admit(topic, payload, retained),
          onError: (message) => log.debug({ message }, "broker connection error"),
        },
      );
      this.flusher = new OutboxFlusher(store, this.session, (message) => log.error(message));
      this.inbound = new InboundQueue(
        (message) => this.onMessage(message.topic, message.payload),
        (message, reason) => this.dropped(message.cls, reason, message.sender),
        () => clock.now().monoMs,
      );
    } else {
      this.session = null;
      this.flusher = null;
      this.inbound = null;
    }
  }

  /** Opens the devices, starts ticking, then connects: the lamps never wait for the network. */
  static async start(options: GatewayNodeOptions): Promise<GatewayNode> {
    const intersection = options.setup.intersection.intersection;
    const outputs = new OutputStage(
      intersection,
      options.setup.intersection.modules,
      () => options.clock.now().monoMs,
    );
    await outputs.open();
    // A restart may find the module still showing what the dead process left: a green is taken over
    // and cleared through yellow, never cut (found by the process-level chaos test).
    const field = await outputs.observe();
    const node = new GatewayNode(options, outputs);
    node.begin(field);
    if (options.http) {
      try {
        node.http = await startHttpEndpoint(options.http.host, options.http.port, node.metrics.registry, () =>
          node.health(),
        );
      } catch (error) {
        await node.stop("cut");
        throw error;
      }
    }
    return node;
  }

  private begin(field: readonly Lamps[] | null): void {
    const { store, log, clock } = this.options;
    // The plan the controller starts with: the one in force before a restart, else the configured one.
    const plan = this.runner.controller.seq.plan;
    const restored = this.runner.controller.mon.latch;
    this.safely(() => {
      store.recordPlan(plan.planId, plan.version, plan, "config", clock.now().wallMs);
      const inForce = store.planInForce();
      if (!inForce || inForce.planId !== plan.planId || inForce.version !== plan.version)
        store.setPlanInForce({
          planId: plan.planId,
          version: plan.version,
          sinceWallMs: clock.now().wallMs,
          activationWallMs: null,
        });
    }, undefined);
    for (const finding of store.latchFindings) log.warn({ record: store.latchRecordFile }, finding);
    if (restored)
      log.error({ latch: restored }, `starting in fault flash: latched before restart: ${restored.message}`);
    this.audit("gateway-started", null, {
      plan: { id: plan.planId, version: plan.version },
      fault: restored ? { kind: restored.kind, message: restored.message } : null,
    });
    if (this.outputs.layouts.length === 0)
      log.warn("no devices configured: the lamps are computed and checked, but drive nothing");
    this.participant.resume();
    if (field) {
      this.runner.dispatch({ type: "field-at-start", observed: field });
      if (this.runner.controller.seq.mode === "startup-clearing")
        log.warn(
          { observed: field },
          "the module still shows a running sequence: clearing it before start-up",
        );
    }
    this.runner.start();
    this.corridorTimer = setInterval(() => this.participant.tick(), 200);
    this.corridorTimer.unref();
    if (this.coordinator) {
      const coordinator = this.coordinator;
      this.coordinatorTimer = setInterval(() => coordinator.tick(), 50);
      this.coordinatorTimer.unref();
    }
    this.session?.start();
  }

  get latch(): FaultLatch | null {
    return this.runner.controller.mon.latch;
  }

  get httpUrl(): string | null {
    return this.http?.url ?? null;
  }

  get mqttConnected(): boolean {
    return this.session?.connected ?? false;
  }

  get mqttCounters() {
    return this.session?.counters ?? null;
  }

  get outboxSent(): number {
    return this.flusher?.sent ?? 0;
  }

  status(): Status {
    const seq = this.runner.controller.seq;
    const latch = this.latch;
    return {
      v: PROTOCOL_VERSION,
      corridor: this.corridorId,
      intersection: this.intersectionId,
      name: this.options.setup.intersection.raw.name,
      position: this.position,
      mode: this.runner.mode,
      plan: { id: seq.plan.planId, version: seq.plan.version },
      fault: latch
        ? {
            kind: latch.kind,
            message: latch.message,
            groups: [...latch.groups],
            at: new Date(latch.atWallMs).toISOString(),
          }
        : null,
      lock: this.participant.lock,
      lastTxn: this.lastTxn(),
      at: new Date(this.options.clock.now().wallMs).toISOString(),
    };
  }

  private lastTxn(): Status["lastTxn"] {
    const doubt = this.participant.inDoubt;
    if (doubt)
      return {
        id: doubt.txnId,
        outcome: "in-doubt",
        at: new Date(this.options.clock.now().wallMs).toISOString(),
      };
    const last = this.safely(() => this.options.store.lastTransaction(), null);
    if (!last) return null;
    const late = this.lastActivation?.txnId === last.txnId ? this.lastActivation.lateByMs : null;
    return {
      id: last.txnId,
      outcome: last.phase,
      at: new Date(last.atWallMs).toISOString(),
      ...(late !== null ? { lateByMs: late } : {}),
    };
  }

  private sendCorridor(to: string, body: CorridorBody): void {
    const session = this.session;
    if (!session?.connected) return; // the protocol resends and asks again: nothing is queued here
    const envelope = {
      v: PROTOCOL_VERSION,
      from: this.intersectionId,
      to,
      sentAtWallMs: this.options.clock.now().wallMs,
      body,
    };
    session
      .publish(inboxTopic(this.corridorId, to, this.intersectionId), JSON.stringify(envelope), { qos: 1 })
      .catch(() => {});
  }

  health() {
    const now = this.options.clock.now().monoMs;
    const last = this.runner.lastTickMono;
    const tickAgeMs = last === null ? null : now - last;
    const ticking = tickAgeMs !== null && tickAgeMs < 10 * this.runner.tickMs;
    const latchDurable = this.runner.latchDurable;
    return {
      // A latch held in memory only is not healthy: a restart now would lose it.
      healthy: ticking && !this.stopped && latchDurable,
      latchDurable,
      latchProblem: this.latch ? (this.options.store.latchDurability.problem ?? null) : null,
      intersection: this.intersectionId,
      mode: this.runner.mode,
      fault: this.latch?.message ?? null,
      lastTickAgeMs: tickAgeMs,
      mqtt: this.session ? (this.session.connected ? "connected" : "disconnected") : "not configured",
      outboxDepth: this.safely(() => this.options.store.outboxDepth(), null),
    };
  }

  /** Sends a controller event (what an MQTT command does), for the caller that holds the node. */
  dispatch(event: ControllerEvent): void {
    this.runner.dispatch(event);
    this.publishStatusIfChanged();
  }

  /**
   * The longest a clean stop may take before the lamps go to the module's safe state anyway: the
   * longest minimum + clearance + red clearance of any group, a few ticks, and room for slow exchanges.
   * A service manager's stop timeout must be longer (the README's unit says how much).
   */
  get cleanStopBoundMs(): number {
    return stopBoundMs(this.runner.intersection, this.runner.tickMs) + STOP_EXCHANGE_ALLOWANCE_MS;
  }

  /**
   * Stops the gateway. `clean` (a stop signal, `systemctl stop`): every green, walk and clearance ends
   * through its clearances to all-red first, and only then do the lamps go to the module's safe state
   * (steady red). `cut` (tests, a second stop signal): the safe state at once, as a crash leaves it
   * to the module's watchdog.
   */
  async stop(how: "clean" | "cut"): Promise<StopOutcome> {
    if (this.stopped || this.stopping) {
      if (how === "cut") this.runner.cutShort();
      return "cut";
    }
    const { log } = this.options;
    let outcome: StopOutcome = "cut";
    if (how === "clean") {
      this.stopping = true;
      const boundMs = this.cleanStopBoundMs;
      log.info({ boundMs }, "stopping: ending every interval through its clearances to all-red");
      outcome = await this.runner.stopCleanly(boundMs);
      if (outcome === "clean") log.info("all-red reached: handing the lamps to the module's safe state");
      else if (outcome === "cut")
        log.error("stop cut short by a second request: clearances in progress were cut");
      else
        log.error(
          { boundMs },
          "all-red not reached within the stop bound: handing the lamps to the module's safe state",
        );
      this.metrics.stops.inc({ outcome });
    }
    this.stopped = true;
    this.inbound?.close();
    if (this.corridorTimer) clearInterval(this.corridorTimer);
    if (this.coordinatorTimer) clearInterval(this.coordinatorTimer);
    if (this.auditSyncTimer) clearTimeout(this.auditSyncTimer);
    await this.runner.stop();
    for (const error of await this.outputs.writeSafeState())
      log.error({ error: error.message }, "could not write the safe state");
    await this.outputs.close();
    this.audit("gateway-stopped", null, { how, outcome });
    if (this.session?.connected) {
      // Last words: the audit flushed if it can be, and "offline" said plainly rather than by the will.
      this.flusher?.kick();
      let bound: NodeJS.Timeout | undefined;
      await Promise.race([
        this.session
          .publish(
            this.topics.availability,
            JSON.stringify({
              v: PROTOCOL_VERSION,
              online: false,
              reason: "stopped",
              at: new Date().toISOString(),
            }),
            { retain: true },
          )
          .catch(() => {}),
        new Promise((resolve) => {
          bound = setTimeout(resolve, 1000);
        }),
      ]);
      clearTimeout(bound); // a timer left running would keep the process alive a second past its stop
    }
    await this.session?.stop();
    await this.http?.close();
    this.coordinatorLog?.close();
    return outcome;
  }

  // --- MQTT ---

  private onConnect(): void {
    const { log } = this.options;
    this.metrics.mqttConnected.set(1);
    if ((this.session?.counters.connects ?? 0) > 1) this.metrics.mqttReconnects.inc();
    log.info(
      { outbox: this.safely(() => this.options.store.outboxDepth(), null) },
      "connected to the broker",
    );
    const session = this.session;
    if (!session) return;
    const failed = (what: string) => (error: Error) =>
      log.debug({ error: error.message }, `could not publish ${what}`);
    session
      .publish(
        this.topics.availability,
        JSON.stringify({
          v: PROTOCOL_VERSION,
          online: true,
          at: new Date(this.options.clock.now().wallMs).toISOString(),
        }),
        { retain: true },
      )
      .catch(failed("availability"));
    this.lastStatusKey = "";
    this.publishStatusIfChanged();
    this.flusher?.kick();
    // A restarted gateway finishes the commits of its coordinator log (COMMIT resent until acknowledged).
    const resumed = this.coordinator?.resumeLog() ?? [];
    if (resumed.length > 0)
      log.warn(
        { txns: resumed.map((r) => r.state.txnId) },
        "finishing committed transactions of the coordinator log",
      );
  }

  private publishStatusIfChanged(): void {
    if (!this.session?.connected) return;
    const status = this.status();
    const key = JSON.stringify({ ...status, at: "" });
    if (key === this.lastStatusKey) return;
    this.lastStatusKey = key;
    this.session.publish(this.topics.status, JSON.stringify(status), { retain: true }).catch(() => {
      this.lastStatusKey = ""; // published again on the next change or connect
    });
  }

  /**
   * Every message from the broker comes through here, as mqtt.js parses it: classified by topic,
   * refused if it is a retained command or inbox message (a command is an act of a person now, never
   * a replay), and queued, bounded and rate-limited per sender. Its work is done later, in slices.
   */
  private admit(topic: string, payload: Buffer, retained: boolean): void {
    const route = classifyInbound(topic, this.corridorId, this.intersectionId);
    if (!route) {
      this.metrics.mqttRejected.inc({ reason: "unexpected-topic" });
      return;
    }
    // Decision records are retained by design; nothing else that comes in may be.
    if (retained && route.cls !== "decision") return this.dropped(route.cls, "retained", route.sender);
    this.inbound?.offer({ topic, payload, ...route });
  }

  private dropped(cls: InboundClass, reason: DropReason | "retained", sender: string): void {
    this.metrics.inboundDropped.inc({ class: cls, reason });
    this.dropWatch.count(`${cls} from ${sender}: ${reason}`);
  }

  private onMessage(topic: string, payload: Buffer): void {
    if (topic.startsWith(inboxFilter(this.corridorId, this.intersectionId).slice(0, -1))) {
      const parsed = parseCorridorMessage(topic, payload);
      if (!parsed.ok) {
        this.metrics.mqttRejected.inc({ reason: `corridor-${parsed.reason}` });
        return;
      }
      // The gateway is a participant, and a coordinator too when it runs a push: the body says whose it is.
      if (this.coordinator?.receive(parsed.envelope, false)) return;
      this.participant.onMessage(parsed.envelope);
      return;
    }
    if (topic.includes("/decisions/")) {
      const record = parsePayload(decisionRecordSchema, payload);
      if (!record) this.metrics.mqttRejected.inc({ reason: "corridor-invalid" });
      else this.participant.onDecisionRecord(record);
      return;
    }
    const prefix = this.topics.commandFilter.slice(0, -1);
    if (!topic.startsWith(prefix)) {
      this.metrics.mqttRejected.inc({ reason: "unexpected-topic" });
      return;
    }
    const name = topic.slice(prefix.length);
    const parsed = parseCommand(name, payload);
    if (!parsed.ok) {
      this.metrics.mqttRejected.inc({ reason: parsed.code });
      this.options.log.warn({ topic, code: parsed.code, message: parsed.message }, "command refused");
      // Informational (a refused command changes nothing): written with the next batch, not forced,
      // so that a stream of refusals cannot make the gateway fsync at the sender's rate.
      this.auditSoon("command-refused", null, {
        command: name,
        id: parsed.id,
        code: parsed.code,
        message: parsed.message,
      });
      this.reply({
        id: parsed.id,
        command: name,
        ok: false,
        error: { code: parsed.code, message: parsed.message },
      });
      return;
    }
    this.execute(parsed.command);
  }

  private execute(command: Command): void {
    const decision = decideCommand(command, {
      mode: this.runner.mode,
      latch: this.latch,
      inDoubt: this.participant.inDoubt?.txnId ?? null,
      coordinatorBusy: !this.coordinator
        ? "this gateway runs without a broker: it cannot coordinate"
        : this.stopping
          ? "this gateway is stopping"
          : this.pushing
            ? `already coordinating ${this.pushing}: one plan push at a time`
            : null,
    });
    this.audit("command", command.by, {
      command: command.name,
      id: command.id,
      ok: decision.outcome.ok,
      ...(command.name === "flash" ? { on: command.on } : {}),
      ...(command.name === "fault-reset" && command.reason ? { reason: command.reason } : {}),
      ...(command.name === "txn-resolve" ? { txnId: command.txnId, outcome: command.outcome } : {}),
      ...(decision.outcome.ok ? {} : { refused: decision.outcome.message }),
    });
    if (decision.controllerEvent) this.dispatch(decision.controllerEvent);
    if (command.name === "txn-resolve" && decision.outcome.ok)
      this.participant.resolve(command.txnId, command.outcome, command.by);
    if (command.name === "plan-push" && decision.outcome.ok) {
      this.coordinatePlanPush(command).catch((error: Error) => {
        this.options.log.error({ error: error.message, id: command.id }, "plan push failed");
        this.reply({
          id: command.id,
          command: command.name,
          ok: false,
          error: { code: "refused", message: `coordination failed: ${error.message}` },
        });
      });
      return;
    }
    if (decision.outcome.ok) {
      this.metrics.commands.inc({ command: command.name });
      this.reply({
        id: command.id,
        command: command.name,
        ok: true,
        result: { ...decision.outcome.result, status: this.status() },
      });
    } else {
      this.metrics.mqttRejected.inc({ reason: "refused" });
      this.reply({
        id: command.id,
        command: command.name,
        ok: false,
        error: { code: "refused", message: decision.outcome.message },
      });
    }
  }

  /** Coordinates a corridor plan change for an operator, and replies with its outcome once decided. */
  private async coordinatePlanPush(command: Extract<Command, { name: "plan-push" }>): Promise<void> {
    const { log } = this.options;
    const coordinator = this.coordinator as CoordinatorHost;
    let plan: LoadedPlan;
    try {
      plan = loadPlanData(`plan-push ${command.id}`, command.planFile);
      if (plan.raw.corridor !== this.corridorId)
        throw new ConfigError([
          {
            file: `plan-push ${command.id}`,
            path: ["corridor"],
            message: `plan ${plan.raw.id} is for corridor ${plan.raw.corridor}, not ${this.corridorId}`,
          },
        ]);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      this.reply({
        id: command.id,
        command: command.name,
        ok: false,
        error: { code: "invalid", message: error.message },
      });
      return;
    }
    this.pushing = `${plan.raw.id} v${plan.raw.version}`;
    try {
      const result = await coordinatePush(coordinator, {
        name: this.intersectionId,
        dailySyncMs: this.options.setup.corridor.dailySyncMs,
        planFile: plan.raw,
        atWallMs: command.atWallMs,
        leadMs: command.leadMs,
        ackTimeoutMs: command.ackTimeoutMs,
      });
      log.info(
        { txn: result.txnId, outcome: result.outcome, reason: result.reason },
        "plan push coordinated",
      );
      this.audit("plan-push", command.by, {
        txnId: result.txnId,
        plan: result.plan,
        outcome: result.outcome,
        reason: result.reason,
      });
      this.metrics.commands.inc({ command: command.name });
      this.reply({ id: command.id, command: command.name, ok: true, result: { push: result } });
    } finally {
      this.pushing = null;
    }
  }

  private reply(reply: Omit<Reply, "v" | "at">): void {
    const full: Reply = {
      v: PROTOCOL_VERSION,
      at: new Date(this.options.clock.now().wallMs).toISOString(),
      ...reply,
    };
    this.session?.publish(this.topics.reply, JSON.stringify(full), { qos: 1 }).catch((error: Error) => {
      this.options.log.warn({ error: error.message, id: reply.id }, "could not send a reply");
    });
  }

  // --- audit trail ---

  private onSignal(event: SignalEvent): void {
    const { store, clock, log } = this.options;
    switch (event.type) {
      case "stage-start":
        log.debug({ event }, event.type);
        return;
      case "cycle-start":
        // Once a cycle: logged, not audited (the audit trail is for changes).
        log.info({ event }, event.type);
        return;
      case "plan-activated": {
        const txnId = this.pendingTxnPlans.get(`${event.planId}@${event.version}`);
        if (txnId) {
          this.pendingTxnPlans.delete(`${event.planId}@${event.version}`);
          this.lastActivation = { txnId, lateByMs: event.lateByMs };
        }
        // The plan in force and its audit event in one transaction: a reader (or a crash) sees both or neither.
        const { type, ...detail } = event;
        this.safely(
          () =>
            store.atomically(() => {
              store.setPlanInForce({
                planId: event.planId,
                version: event.version,
                sinceWallMs: clock.now().wallMs,
                activationWallMs: event.activationWallMs,
              });
              this.audit(type, null, detail);
            }),
          undefined,
        );
        log.info({ event }, event.type);
        return;
      }
    }
    log.info({ event }, event.type);
    const { type, ...detail } = event;
    this.auditSoon(type === "mode" ? "mode" : type, null, detail);
  }

  /** Appends to the audit trail now (after what waits in the deferred queue, to keep the order). */
  private audit(type: string, actor: string | null, detail: Record<string, unknown>): void {
    this.flushAudit();
    this.safely(
      () => this.appendAudit({ type, actor, detail, atWallMs: this.options.clock.now().wallMs }),
      undefined,
    );
    this.flusher?.kick();
  }

  /**
   * Informational entries (the corridor protocol's and the controller's own state is durable in its
   * tables) are written together once this turn's messages are out: one transaction, off the path
   * between a protocol message and its answer (half of a 16-gateway switch's time went there).
   */
  private auditSoon(type: string, actor: string | null, detail: Record<string, unknown>): void {
    if (this.deferredAudit.length >= MAX_DEFERRED_AUDIT) this.flushAudit();
    this.deferredAudit.push({ type, actor, detail, atWallMs: this.options.clock.now().wallMs });
    if (this.deferredAudit.length === 1) setImmediate(() => this.flushAudit());
  }

  private flushAudit(): void {
    const batch = this.deferredAudit.splice(0);
    if (batch.length === 0) return;
    const { store } = this.options;
    // Not forced: the protocol's and the controller's own records are, and these follow them. The
    // outbox holds them back until they are on disk (see GatewayStore.lazily).
    this.safely(() => store.lazily(() => batch.forEach((entry) => this.appendAudit(entry))), undefined);
    this.flusher?.kick();
    if (store.hasUnsyncedOutbox && !this.auditSyncTimer && !this.stopped)
      this.auditSyncTimer = setTimeout(() => {
        this.auditSyncTimer = null;
        this.safely(() => store.syncLazyWrites(), undefined);
        this.flusher?.kick();
      }, AUDIT_SYNC_DELAY_MS);
  }

  private appendAudit(entry: AuditEntry): void {
    const { store } = this.options;
    const { type, actor, detail, atWallMs } = entry;
    if (type === "txn-committed") this.metrics.transactions.inc({ outcome: "committed" });
    if (type === "txn-aborted") this.metrics.transactions.inc({ outcome: "aborted" });
    store.appendEvent({ atWallMs, type, actor, detail }, (seq) => ({
      topic: this.topics.events,
      payload: JSON.stringify({
        v: PROTOCOL_VERSION,
        corridor: this.corridorId,
        intersection: this.intersectionId,
        seq,
        at: new Date(atWallMs).toISOString(),
        type,
        actor,
        detail,
      }),
    }));
  }

  private safely<T>(action: () => T, fallback: T): T {
    try {
      return action();
    } catch (error) {
      if (!(error instanceof StoreError) && !(error instanceof Error)) throw error;
      this.options.log.error({ error: error.message }, "store error");
      return fallback;
    }
  }

  private countModbusErrors(): void {
    for (const { client } of this.outputs.modules) {
      const previous = this.failureSnapshot.get(client.deviceId) ?? {};
      for (const [kind, count] of Object.entries(client.counters.failures)) {
        const delta = count - (previous[kind] ?? 0);
        if (delta > 0) this.metrics.modbusErrors.inc({ device: client.deviceId, kind }, delta);
      }
      this.failureSnapshot.set(client.deviceId, { ...client.counters.failures });
    }
  }
}

/**
 * The plan to start with: the one in force when the gateway stopped (a committed corridor change
 * survives a restart), else the configuration's initial plan.
 */
function planInForce(setup: IntersectionSetup, store: GatewayStore, log: Logger): IntersectionPlan {
  try {
    const inForce = store.planInForce();
    if (!inForce) return setup.initialPlan;
    if (inForce.planId === setup.initialPlan.planId && inForce.version === setup.initialPlan.version)
      return setup.initialPlan;
    const body = store.planBody(inForce.planId, inForce.version) as IntersectionPlan | null;
    const count = setup.intersection.intersection.groups.length;
    const fits =
      body !== null &&
      body.intersectionId === setup.intersection.intersection.id &&
      Array.isArray(body.stages) &&
      body.stages.every(
        (stage) => stage.member.length === count && stage.groups.every((g: number) => g < count),
      );
    if (fits) return body;
    log.warn(
      { inForce },
      "the stored plan in force does not fit this intersection any more: starting with the configured plan",
    );
  } catch (error) {
    log.error(
      { error: (error as Error).message },
      "cannot read the plan in force: starting with the configured plan",
    );
  }
  return setup.initialPlan;
}
