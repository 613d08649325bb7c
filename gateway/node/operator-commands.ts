import { type ControllerEvent, type ControllerMode, lampTestRefusal } from "../core/controller.js";
import { lampChannels, lampTestBoundMs, lampTestReport } from "../core/lamp-test.js";
import { holdRefusal } from "../core/sequencer.js";
import type { FaultLatch } from "../core/monitor.js";
import { type Command, parseCommand, type Reply, type Status } from "../protocol/messages.js";
import { PROTOCOL_VERSION } from "../protocol/topics.js";
import type { BrokerLink } from "./broker-link.js";
import { decideCommand, type SignalContext } from "./commands.js";
import type { GatewayParts } from "./gateway-parts.js";
import { nextAfter } from "../store/hires-records.js";
import { degradeOnStoreFailure } from "./store-guard.js";

/** What the commands need to know of the gateway, and what they may make it do. */
export interface CommandPorts {
  mode(): ControllerMode;
  latch(): FaultLatch | null;
  inDoubt(): string | null;
  /** Why this gateway cannot coordinate a plan push now, or null. */
  coordinatorBusy(): string | null;
  status(): Status;
  dispatch(event: ControllerEvent): void;
  resolveTxn(txnId: string, outcome: "committed" | "aborted", by: string): void;
  pushPlan(
    command: Extract<Command, { name: "plan-push" }>,
    reply: (reply: Omit<Reply, "v" | "at">) => void,
    counted: () => void,
  ): void;
  /** Writes the event log rows still in memory, so that a page holds the newest. */
  flushEventLog(): void;
}

/**
 * Operator commands (`…/cmd/<name>`): parsed and refused with a reply that says why, or decided
 * (commands.ts, pure), audited before they act, carried out, and answered with correlated replies.
 */
export class OperatorCommands {
  constructor(
    private readonly ports: CommandPorts,
    private readonly parts: GatewayParts,
    private readonly link: BrokerLink,
  ) {}

  /**
   * `operator`: the sender's broker login, from the command's topic (null: a topic without one). It is
   * the identity the audit trail records; the payload's `by` is the sender's note.
   */
  take(name: string, operator: string | null, payload: Buffer): boolean {
    const parsed = parseCommand(name, payload);
    if (!parsed.ok) {
      this.parts.metrics.mqttRejected.inc({ reason: parsed.code });
      this.parts.log.warn({ name, code: parsed.code, message: parsed.message }, "command refused");
      // Informational (a refused command changes nothing): written with the next batch, not forced,
      // so that a stream of refusals cannot make the gateway fsync at the sender's rate.
      this.parts.audit.soon("command-refused", operator, {
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
      return true;
    }
    // The login is the identity everywhere the command acts (a reset's "by", a push's lease holder);
    // the payload's own `by` stays as the sender's note in the audit trail.
    const note = parsed.command.by;
    this.execute(operator === null ? parsed.command : { ...parsed.command, by: operator }, operator, note);
    return true;
  }

  private execute(command: Command, operator: string | null, note: string): void {
    if (command.name === "audit") return this.answerAudit(command);
    if (command.name === "events") return this.answerEvents(command);
    const { ports } = this;
    const decision = decideCommand(command, {
      mode: ports.mode(),
      latch: ports.latch(),
      inDoubt: ports.inDoubt(),
      coordinatorBusy: ports.coordinatorBusy(),
      signal: this.signalContext(),
    });
    // A status query changes nothing: it is counted, not audited. Audited, a monitor polling every 10 s
    // would cost the SD card 250 MB a day (docs/footprint.md); monitors read the retained status. A lamp
    // test's report is such a query too (the CLI polls it while the test runs).
    const query = command.name === "status" || (command.name === "lamp-test" && command.action === "report");
    if (!query) this.auditCommand(command, decision, operator, note);
    if (decision.controllerEvent) ports.dispatch(decision.controllerEvent);
    if (command.name === "txn-resolve" && decision.outcome.ok)
      ports.resolveTxn(command.txnId, command.outcome, command.by);
    const counted = () => this.parts.metrics.commands.inc({ command: command.name });
    if (command.name === "plan-push" && decision.outcome.ok)
      return ports.pushPlan(command, (reply) => this.reply(reply), counted);
    if (decision.outcome.ok) {
      counted();
      this.reply({
        id: command.id,
        command: command.name,
        ok: true,
        result: { ...decision.outcome.result, status: ports.status() },
      });
    } else {
      this.parts.metrics.mqttRejected.inc({ reason: "refused" });
      this.reply({
        id: command.id,
        command: command.name,
        ok: false,
        error: { code: "refused", message: decision.outcome.message },
      });
    }
  }

  /** What `hold` and `lamp-test` decide on: the controller as it is now. */
  private signalContext(): SignalContext {
    const { runner, clock } = this.parts;
    const controller = runner.controller;
    const { seq } = controller;
    const intersection = seq.intersection;
    return {
      stage: seq.mode === "running" ? (seq.plan.stages[seq.stage]?.id ?? null) : null,
      holdRefusal: holdRefusal(seq),
      held: seq.held ? { by: seq.held.by, leftMs: Math.max(0, seq.held.untilMs - clock.now().monoMs) } : null,
      lampTestRefusal: lampTestRefusal(controller),
      lampTest: controller.lamp ? lampTestReport(controller.lamp, intersection) : null,
      lampChannels: lampChannels(intersection).length,
      lampTestBoundMs: (stepMs) => lampTestBoundMs(intersection, stepMs, runner.tickMs),
    };
  }

  /**
   * A page of the audit trail (store/audit-page.ts: bounded in rows scanned, events and bytes). A query
   * like `status`: counted, not audited — reading the trail must not grow it.
   */
  private answerAudit(command: Extract<Command, { name: "audit" }>): void {
    const page = degradeOnStoreFailure(
      this.parts.log,
      "audit page not read",
      () => this.parts.store.auditPage(command),
      null,
    );
    if (!page) return this.refuseUnreadableStore(command, "greenwave audit");
    this.parts.metrics.commands.inc({ command: command.name });
    this.reply({ id: command.id, command: command.name, ok: true, result: page });
  }

  /**
   * A page of the high-resolution event log, oldest first (the rows still in memory written first).
   * A query: counted, not audited. `next`: the sequence number to ask after, or null at the end.
   */
  private answerEvents(command: Extract<Command, { name: "events" }>): void {
    const rows = degradeOnStoreFailure(
      this.parts.log,
      "event log page not read",
      () => {
        this.ports.flushEventLog();
        return this.parts.store.hiResEvents({
          afterSeq: command.afterSeq,
          sinceWallMs: command.sinceWallMs,
          untilWallMs: command.untilWallMs,
          limit: command.limit,
        });
      },
      null,
    );
    if (!rows) return this.refuseUnreadableStore(command, "greenwave events export --data-dir");
    this.parts.metrics.commands.inc({ command: command.name });
    this.reply({
      id: command.id,
      command: command.name,
      ok: true,
      result: {
        device: this.parts.ids.intersection,
        rows: rows.map((r) => [r.seq, r.atMs, r.code, r.param]),
        next: nextAfter(rows, command.limit),
      },
    });
  }

  /**
   * The actor is the sender's broker login when the topic carries it (`…/cmd/NAME/@alice`: a broker
   * with users lets an operator publish only under its own name), and the payload's `by` is kept as its
   * note; without it (an older tool, an open broker), `by` is all there is, and the entry says so.
   */
  /** A query the store could not answer (its failure is in the log): refused, with what to do at the cabinet. */
  private refuseUnreadableStore(command: Command, atTheCabinet: string): void {
    this.parts.metrics.mqttRejected.inc({ reason: "refused" });
    this.reply({
      id: command.id,
      command: command.name,
      ok: false,
      error: {
        code: "refused",
        message: `this gateway cannot read its store now (see its log); at the cabinet: ${atTheCabinet}`,
      },
    });
  }

  private auditCommand(
    command: Command,
    decision: ReturnType<typeof decideCommand>,
    operator: string | null,
    note: string,
  ): void {
    this.parts.audit.now("command", command.by, {
      command: command.name,
      id: command.id,
      identity: operator === null ? "claimed" : "login",
      ...(operator !== null && note !== operator ? { note } : {}),
      ok: decision.outcome.ok,
      ...(command.name === "flash" ? { on: command.on } : {}),
      ...(command.name === "hold"
        ? { on: command.on, ...(command.forMs !== undefined ? { forMs: command.forMs } : {}) }
        : {}),
      ...(command.name === "lamp-test"
        ? { action: command.action, ...(command.stepMs !== undefined ? { stepMs: command.stepMs } : {}) }
        : {}),
      ...(command.name === "fault-reset" && command.reason ? { reason: command.reason } : {}),
      ...(command.name === "txn-resolve" ? { txnId: command.txnId, outcome: command.outcome } : {}),
      ...(decision.outcome.ok ? {} : { refused: decision.outcome.message }),
    });
  }

  private reply(reply: Omit<Reply, "v" | "at">): void {
    const full: Reply = {
      v: PROTOCOL_VERSION,
      at: new Date(this.parts.clock.now().wallMs).toISOString(),
      ...reply,
    };
    this.link.publish(this.parts.topics.reply, JSON.stringify(full)).catch((error: Error) => {
      this.parts.log.warn({ error: error.message, id: reply.id }, "could not send a reply");
    });
  }
}
