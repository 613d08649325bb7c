import { OutputStage } from "../../devices/output-stage.js";
import type { ControllerEvent } from "../core/controller.js";
import type { Lamps } from "../core/model.js";
import type { FaultLatch } from "../core/monitor.js";
import { stopBoundMs } from "../core/sequencer.js";
import type { Status } from "../protocol/messages.js";
import { type IntersectionTopics, intersectionTopics } from "../protocol/topics.js";
import { type HttpEndpoint, startHttpEndpoint } from "../shell/http-server.js";
import { IntersectionRunner, type StopOutcome } from "../shell/intersection-runner.js";
import { createGatewayMetrics, type GatewayMetrics } from "../shell/metrics.js";
import { AuditTrail } from "./audit-trail.js";
import { BrokerLink } from "./broker-link.js";
import { ClockWatch } from "./clock-watch.js";
import { CoordinatorFeature } from "./coordinator-feature.js";
import { createCorridorParticipant, tickParticipant } from "./corridor-feature.js";
import type { CorridorParticipant } from "./corridor-participant.js";
import { GatewayBus } from "./gateway-bus.js";
import { HiResLog } from "./hires-log.js";
import { hiResRoute } from "./hires-http.js";
import { InboundRouter, registerRoutes } from "./inbound-router.js";
import { type CommandPorts, OperatorCommands } from "./operator-commands.js";
import type { GatewayNodeOptions, GatewayParts } from "./gateway-parts.js";
import { recordPlanAtStart, startPlan } from "./plan-at-start.js";
import { judgePreviousRun, type PreviousRunJudgement, runIdentity, runStarted } from "./previous-run.js";
import { createScheduleShell, restoreSchedule, scheduleStatus, tickSchedule } from "./schedule-feature.js";
import type { ScheduleShell } from "../shell/schedule-shell.js";
import { runnerHooks, sequencerMetricSources } from "./runner-hooks.js";
import { registerServiceFeature } from "./service-feature.js";
import { registerSignalAudit } from "./signal-audit.js";
import { StatusReporter } from "./status-reporter.js";
import { degradeOnStoreFailure } from "./store-guard.js";

export type { BrokerSettings } from "./broker-link.js";
export type { GatewayNodeOptions, GatewayParts } from "./gateway-parts.js";

/** Room above the clearances themselves for a clean stop: exchanges with a slow module, a late tick. */
const STOP_EXCHANGE_ALLOWANCE_MS = 2000;

/**
 * One gateway, as a composition of features around its intersection's controller: the audit trail,
 * the status and health, operator commands, the corridor participant, the coordinator, metrics, and
 * the router that hands each incoming message to the feature that takes it. The signal side never
 * waits for the network: the features only observe it (through the bus) and feed it events.
 */
export class GatewayNode {
  readonly metrics: GatewayMetrics;
  readonly runner: IntersectionRunner;
  readonly topics: IntersectionTopics;
  readonly corridorId: string;
  readonly intersectionId: string;
  readonly participant: CorridorParticipant;
  private readonly bus = new GatewayBus();
  private readonly audit: AuditTrail;
  readonly hiRes: HiResLog;
  private readonly link: BrokerLink | null;
  private readonly router: InboundRouter | null;
  private readonly reporter: StatusReporter;
  private readonly coordinator: CoordinatorFeature | null;
  private http: HttpEndpoint | null = null;
  private participantTimer: NodeJS.Timeout | null = null;
  private scheduleTimer: NodeJS.Timeout | null = null;
  private readonly schedule: ScheduleShell;
  private readonly endService: (() => void) | null;
  private readonly clockWatch: ClockWatch | null;
  /** Set from begin() until the start-up is decided and audited (`startedAs`). */
  private starting: { readonly previous: PreviousRunJudgement } | null = null;
  /** When this run began (wall ms), for the record of the run. */
  private startedAtWallMs = 0;
  /** A clean stop is running its clearances: the gateway votes no and says "stopping". */
  private stopping = false;
  private stopped = false;

  private constructor(
    private readonly options: GatewayNodeOptions,
    private readonly outputs: OutputStage,
  ) {
    const { setup, store, clock, log } = options;
    const intersection = setup.intersection.intersection;
    this.intersectionId = intersection.id;
    this.corridorId = setup.corridor.raw.id;
    const ids = { corridor: this.corridorId, intersection: this.intersectionId };
    this.topics = intersectionTopics(this.corridorId, this.intersectionId);
    this.metrics = createGatewayMetrics(intersection.id, {
      outboxDepth: () => degradeOnStoreFailure(log, "outbox depth unknown", () => store.outboxDepth(), 0),
      outboxDropped: () => degradeOnStoreFailure(log, "outbox drops unknown", () => store.outboxDropped, 0),
      faultLatched: () => this.latch !== null,
      latchDurable: () => this.runner.latchDurable,
      mode: () => this.runner.mode,
      ...sequencerMetricSources(
        () => this.runner.controller.seq,
        () => clock.now().monoMs,
      ),
      detectors: () => {
        const c = this.runner.controller;
        return (c.seq.intersection.detectors ?? []).map((d, i) => ({
          id: d.id,
          failed: c.det.detectors[i]?.failure?.reason ?? null,
        }));
      },
    });
    const tickMs = options.tickMs ?? 100;
    const hooks = runnerHooks(outputs, this.bus, this.metrics, clock, log, tickMs, options.display ?? {});
    const restoredSchedule = restoreSchedule(setup, store, log);
    this.runner = new IntersectionRunner(
      intersection,
      startPlan(setup, store, log, restoredSchedule, clock.now().wallMs),
      clock,
      store,
      hooks,
      tickMs,
    );
    this.link = options.broker
      ? new BrokerLink(options.broker, ids, this.topics, store, clock, log, {
          onConnect: () => this.connected(),
          onDisconnect: (reason) => {
            this.metrics.mqttConnected.set(0);
            log.warn({ reason }, "broker connection lost; lamps unaffected, events kept in the outbox");
          },
          onMessage: (topic, payload, retained) => this.router?.admit(topic, payload, retained),
        })
      : null;
    const kick = () => this.link?.flusher.kick();
    this.audit = new AuditTrail(store, clock, log, this.metrics, { ...ids, topics: this.topics }, kick);
    const commandPrefix = this.topics.commandFilter.slice(0, -1);
    this.router = this.link ? new InboundRouter({ ...ids, commandPrefix }, this.metrics, log, clock) : null;
    const parts: GatewayParts = {
      ...{ setup, ids, topics: this.topics, store, clock, log, runner: this.runner, bus: this.bus },
      ...{ audit: this.audit, metrics: this.metrics, link: this.link, router: this.router },
    };
    // Before the signal audit: the start-up decision is audited with gateway-started, ahead of the mode
    // change it brings; the run's record follows the plan in force.
    this.bus.on("signal", (event) => {
      if (event.type === "start-up") this.startedAs(event.how, event.reason);
      else if (event.type === "plan-activated") this.recordRun(null);
    });
    registerSignalAudit(parts);
    this.clockWatch = options.readClockSync ? new ClockWatch(parts, options.readClockSync) : null;
    this.schedule = createScheduleShell(parts, restoredSchedule);
    this.hiRes = new HiResLog(parts, () => this.schedule.runnerState.inScheduledFlash, this.intersectionId);
    this.participant = createCorridorParticipant(
      parts,
      options.corridor,
      () => this.stopping,
      this.clockWatch,
      this.schedule,
    );
    const clockReading = () => this.clockWatch?.reading ?? null;
    this.reporter = new StatusReporter(parts, this.participant, clockReading, options.release, () =>
      scheduleStatus(this.schedule),
    );
    this.coordinator = this.link ? new CoordinatorFeature(parts, this.link) : null;
    if (this.router && this.link) registerRoutes(this.router, this.routed(parts, this.link));
    for (const feature of options.features ?? []) feature(parts);
    this.endService = options.service ? registerServiceFeature(parts, options.service) : null;
  }

  /** The features that take what comes in from the broker, and what operator commands may do. */
  private routed(parts: GatewayParts, link: BrokerLink) {
    const ports: CommandPorts = {
      mode: () => this.runner.mode,
      latch: () => this.latch,
      inDoubt: () => this.participant.inDoubt?.txnId ?? null,
      coordinatorBusy: () => (this.stopping ? "this gateway is stopping" : (this.coordinator?.busy ?? null)),
      status: () => this.status(),
      dispatch: (event) => this.dispatch(event),
      resolveTxn: (txnId, outcome, by) => this.participant.resolve(txnId, outcome, by),
      pushPlan: (command, reply, counted) => this.coordinator?.push(command, reply, counted),
      flushEventLog: () => this.hiRes.flush(),
    };
    const commands = new OperatorCommands(ports, parts, link);
    return { coordinator: this.coordinator, participant: this.participant, commands };
  }

  /** Opens the devices, starts ticking, then connects: the lamps never wait for the network. */
  static async start(options: GatewayNodeOptions): Promise<GatewayNode> {
    const intersection = options.setup.intersection.intersection;
    const outputs = new OutputStage(
      intersection,
      options.setup.intersection.modules,
      () => options.clock.now().monoMs,
      options.setup.intersection.detectorWiring,
    );
    for (const reason of await outputs.open())
      options.log.warn(`cannot open a module link: ${reason}; retrying in the background`);
    // A restart may find the module still showing what the dead process left: a green is taken over
    // and cleared through yellow, never cut (found by the process-level chaos test).
    const field = await outputs.observe();
    const node = new GatewayNode(options, outputs);
    node.begin(field);
    if (options.http) {
      try {
        node.http = await startHttpEndpoint(
          options.http.host,
          options.http.port,
          node.metrics.registry,
          () => node.health(),
          () => node.readiness(),
          {
            "/events": hiResRoute(
              options.store,
              node.hiRes,
              node.intersectionId,
              () => options.clock.now().wallMs,
            ),
          },
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
    recordPlanAtStart(store, plan, clock.now().wallMs, log);
    for (const finding of store.latchFindings) log.warn({ record: store.latchRecordFile }, finding);
    if (restored)
      log.error({ latch: restored }, `starting in fault flash: latched before restart: ${restored.message}`);
    // How the last run ended, as the store proves it; then this run is recorded as begun and not yet
    // stopped (what a crash leaves), on disk before the first write to the lamps.
    const previous = degradeOnStoreFailure(
      log,
      "the record of the last run could not be read: the full start-up",
      () => judgePreviousRun(store.runRecord(), this.runIdentity()),
      { previous: "unknown", why: "the record of the last run could not be read" } as PreviousRunJudgement,
    );
    this.startedAtWallMs = clock.now().wallMs;
    this.recordRun(null);
    this.starting = { previous };
    this.hiRes.start();
    if (this.outputs.layouts.length === 0)
      log.warn("no devices configured: the lamps are computed and checked, but drive nothing");
    if (field) {
      // The core decides how to start (core/start-up.ts) and says so: `startedAs` audits it.
      this.runner.dispatch({ type: "field-at-start", observed: field, previous: previous.previous });
      if (this.runner.controller.seq.mode === "startup-clearing")
        log.warn(
          { observed: field },
          "the module still shows a running sequence: clearing it before start-up",
        );
    }
    if (this.starting)
      this.startedAs(
        "cold",
        restored
          ? "a fault was latched before the restart: fault flash until an operator resets it"
          : field
            ? "the full start-up"
            : "the lamps could not be read back before the first write (a module did not answer): the full start-up",
      );
    this.participant.resume();
    this.runner.start();
    this.participantTimer = tickParticipant(this.participant);
    this.scheduleTimer = tickSchedule(this.schedule);
    this.clockWatch?.start();
    this.coordinator?.start();
    this.link?.start();
  }

  /** The start-up decided (once per run): said in the log in words, and audited as gateway-started. */
  private startedAs(how: "resumed" | "warm" | "cold", reason: string): void {
    const starting = this.starting;
    if (!starting) {
      // Decided again before the first write reached the lamps (a module's watchdog dropped them).
      this.options.log.warn(
        { startUp: { how, reason } },
        `start-up decided again: the full start-up: ${reason}`,
      );
      this.audit.now("start-up-revised", null, { how, reason });
      return;
    }
    this.starting = null;
    const { log } = this.options;
    const plan = this.runner.controller.seq.plan;
    const restored = this.runner.controller.mon.latch;
    const previous = starting.previous;
    const words =
      how === "resumed"
        ? `start-up: resumed, no flash: ${reason}; the lamps are taken over where they are`
        : how === "warm"
          ? `start-up without flash: ${reason}; all-red, then the cycle`
          : `start-up: the full start-up (flash, then all-red): ${reason}`;
    log.info({ startUp: { how, reason }, previousRun: previous }, `${words} (last run: ${previous.why})`);
    this.audit.now("gateway-started", null, {
      plan: { id: plan.planId, version: plan.version },
      fault: restored ? { kind: restored.kind, message: restored.message } : null,
      how,
      reason,
      previousRun: previous.previous,
      previousRunWhy: previous.why,
    });
  }

  /** What this run drives now: the configuration (the intersection in force, its wiring) and the plan. */
  private runIdentity() {
    const { intersection } = this.options.setup;
    const seq = this.runner.controller.seq;
    return runIdentity(seq.intersection, intersection.modules, intersection.detectorWiring, seq.plan);
  }

  /**
   * The record of this run, forced (store/run-record.ts): begun and not yet stopped, with the plan in
   * force (at start, and again whenever a plan takes effect); `cleanStopAtWallMs` only once a clean stop
   * has reached all-red and the safe state is written to every module.
   */
  private recordRun(cleanStopAtWallMs: number | null): void {
    const { store, log } = this.options;
    degradeOnStoreFailure(
      log,
      cleanStopAtWallMs === null
        ? "this run not recorded: a restart after a crash may be taken for one after a clean stop (its readback still decides)"
        : "the clean stop not recorded: the next start takes the lamps for what a crash left",
      () =>
        store.setRunRecord({
          ...runStarted(this.runIdentity(), this.startedAtWallMs),
          cleanStopAtWallMs,
        }),
      undefined,
    );
  }

  private connected(): void {
    this.metrics.mqttConnected.set(1);
    if ((this.link?.session.counters.connects ?? 0) > 1) this.metrics.mqttReconnects.inc();
    const depth = degradeOnStoreFailure(
      this.options.log,
      "outbox depth unknown",
      () => this.options.store.outboxDepth(),
      null,
    );
    this.options.log.info({ outbox: depth }, "connected to the broker");
    this.bus.emit("connected");
    this.coordinator?.resume();
  }

  get latch(): FaultLatch | null {
    return this.runner.controller.mon.latch;
  }

  get httpUrl(): string | null {
    return this.http?.url ?? null;
  }

  get mqttConnected(): boolean {
    return this.link?.connected ?? false;
  }

  get mqttCounters() {
    return this.link?.session.counters ?? null;
  }

  get outboxSent(): number {
    return this.link?.flusher.sent ?? 0;
  }

  status(): Status {
    return this.reporter.status();
  }

  health() {
    return this.reporter.health(this.stopped);
  }

  readiness() {
    return this.reporter.readiness(this.stopped);
  }

  /** Sends a controller event (what an MQTT command does), for the caller that holds the node. */
  dispatch(event: ControllerEvent): void {
    this.runner.dispatch(event);
    this.bus.emit("changed");
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
    if (how === "cut") this.bus.emit("stopping");
    const outcome = how === "clean" ? await this.runClearances() : "cut";
    this.stopped = true;
    this.router?.close();
    if (this.participantTimer) clearInterval(this.participantTimer);
    if (this.scheduleTimer) clearInterval(this.scheduleTimer);
    this.clockWatch?.stop();
    this.coordinator?.stop();
    this.audit.close();
    await this.runner.stop();
    this.hiRes.stop();
    const unsafe = await this.outputs.writeSafeState();
    for (const error of unsafe)
      this.options.log.error({ error: error.message }, "could not write the safe state");
    // A clean stop proved on every module: the next start may skip its start-up flash (if the lamps
    // still show all-red then). Anything less leaves the record of a run that did not stop cleanly.
    // A run that ended in a latched fault is not clean: its recovery is the whole start-up.
    if (outcome === "clean" && unsafe.length === 0 && this.latch === null)
      this.recordRun(this.options.clock.now().wallMs);
    await this.outputs.close();
    this.audit.now("gateway-stopped", null, { how, outcome });
    await this.link?.stop();
    await this.http?.close();
    this.coordinator?.close();
    this.endService?.();
    return outcome;
  }

  private async runClearances(): Promise<StopOutcome> {
    const { log } = this.options;
    this.stopping = true;
    this.bus.emit("stopping");
    const boundMs = this.cleanStopBoundMs;
    log.info({ boundMs }, "stopping: ending every interval through its clearances to all-red");
    const outcome = await this.runner.stopCleanly(boundMs);
    if (outcome === "clean") log.info("all-red reached: handing the lamps to the module's safe state");
    else if (outcome === "cut")
      log.error("stop cut short by a second request: clearances in progress were cut");
    else
      log.error(
        { boundMs },
        "all-red not reached within the stop bound: handing the lamps to the module's safe state",
      );
    this.metrics.stops.inc({ outcome });
    return outcome;
  }
}
