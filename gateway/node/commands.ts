import type { ControllerEvent, ControllerMode } from "../core/controller.js";
import type { FaultLatch } from "../core/monitor.js";
import type { Command } from "../protocol/messages.js";

export interface CommandContext {
  readonly mode: ControllerMode;
  readonly latch: FaultLatch | null;
  /** The transaction this intersection is in doubt about, if any. */
  readonly inDoubt: string | null;
  /** Can this gateway coordinate now: null when it can, else why not. */
  readonly coordinatorBusy: string | null;
}

export interface CommandDecision {
  /** What the reply carries: a result, or a refusal an operator can act on. */
  readonly outcome:
    | { readonly ok: true; readonly result: Record<string, unknown> }
    | { readonly ok: false; readonly message: string };
  /** What the controller must do, if anything. */
  readonly controllerEvent: ControllerEvent | null;
}

/** What an operator command does to the gateway: pure, so that it is tested without a broker. */
export function decideCommand(command: Command, context: CommandContext): CommandDecision {
  switch (command.name) {
    case "status":
    case "audit":
    case "events":
      // Queries: they change nothing (the pages are read by the shell, OperatorCommands).
      return { outcome: { ok: true, result: {} }, controllerEvent: null };
    case "fault-reset":
      if (!context.latch)
        return {
          outcome: { ok: true, result: { cleared: null, message: "no fault was latched" } },
          controllerEvent: null,
        };
      return {
        outcome: {
          ok: true,
          result: {
            cleared: { kind: context.latch.kind, message: context.latch.message },
            message: "fault cleared: the intersection restarts through flash and all-red",
          },
        },
        controllerEvent: { type: "operator-reset", by: command.by },
      };
    case "txn-resolve":
      if (context.inDoubt !== command.txnId)
        return {
          outcome: {
            ok: false,
            message: context.inDoubt
              ? `not in doubt about ${command.txnId} (in doubt about ${context.inDoubt})`
              : `not in doubt about ${command.txnId}: nothing to resolve here`,
          },
          controllerEvent: null,
        };
      return {
        outcome: {
          ok: true,
          result: { message: `transaction ${command.txnId} resolved as ${command.outcome}` },
        },
        controllerEvent: null,
      };
    case "plan-push":
      // Accepted: the gateway coordinates, and replies once the change is decided (or refused).
      if (context.coordinatorBusy)
        return { outcome: { ok: false, message: context.coordinatorBusy }, controllerEvent: null };
      return { outcome: { ok: true, result: { message: "coordinating" } }, controllerEvent: null };
    case "flash":
      if (context.mode === "stopping")
        return {
          outcome: {
            ok: false,
            message: "the gateway is stopping: its intervals end through their clearances to all-red",
          },
          controllerEvent: null,
        };
      if (context.latch)
        return {
          outcome: { ok: false, message: `a fault is latched (${context.latch.kind}): reset it first` },
          controllerEvent: null,
        };
      return {
        outcome: {
          ok: true,
          result: {
            message: command.on
              ? "scheduled flash requested: entered at the next safe point"
              : "leaving scheduled flash through all-red",
          },
        },
        controllerEvent: { type: command.on ? "enter-flash" : "leave-flash" },
      };
  }
}
