import type { ControllerEvent, ControllerMode } from "../core/controller.js";
import { DEFAULT_LAMP_STEP_MS, type LampTestReport } from "../core/lamp-test.js";
import type { FaultLatch } from "../core/monitor.js";
import { DEFAULT_HOLD_MS } from "../core/sequencer.js";
import { formatSeconds } from "../core/units.js";
import type { Command } from "../protocol/messages.js";

export interface CommandContext {
  readonly mode: ControllerMode;
  readonly latch: FaultLatch | null;
  /** The transaction this intersection is in doubt about, if any. */
  readonly inDoubt: string | null;
  /** Can this gateway coordinate now: null when it can, else why not. */
  readonly coordinatorBusy: string | null;
  /** The signal side, for `hold` and `lamp-test` (absent: refused, nothing known of it). */
  readonly signal?: SignalContext;
}

/** What the hold and lamp-test commands need to know of the controller (read by OperatorCommands). */
export interface SignalContext {
  /** The stage shown, while a plan runs. */
  readonly stage: string | null;
  /** Why a hold cannot begin now (core/sequencer.ts holdRefusal), or null. */
  readonly holdRefusal: string | null;
  /** The hold in force: who holds, and how long it has left. */
  readonly held: { readonly by: string; readonly leftMs: number } | null;
  /** Why a lamp test cannot start now (core/controller.ts lampTestRefusal), or null. */
  readonly lampTestRefusal: string | null;
  /** The running or last lamp test, null: none since the gateway started. */
  readonly lampTest: LampTestReport | null;
  /** How many lamps a test lights here, and the longest it takes with a step. */
  readonly lampChannels: number;
  readonly lampTestBoundMs: (stepMs: number) => number;
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
    case "hold":
      return decideHold(command, context);
    case "lamp-test":
      return decideLampTest(command, context);
  }
}

/** "15 min", "1 h 30 min", "45 s". */
export function describeDuration(ms: number): string {
  if (ms < 60_000 || ms % 60_000 !== 0) return formatSeconds(ms);
  const minutes = ms / 60_000;
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return h === 0 ? `${m} min` : m === 0 ? `${h} h` : `${h} h ${m} min`;
}

const refuse = (message: string): CommandDecision => ({
  outcome: { ok: false, message },
  controllerEvent: null,
});

function decideHold(command: Extract<Command, { name: "hold" }>, context: CommandContext): CommandDecision {
  const signal = context.signal;
  if (!signal) return refuse("this gateway cannot hold a stage");
  if (!command.on) {
    if (!signal.held)
      return { outcome: { ok: true, result: { message: "no hold was in force" } }, controllerEvent: null };
    return {
      outcome: {
        ok: true,
        result: {
          message: `hold released: the sequence goes on from stage ${signal.stage ?? "?"} (its clearances first); offset correction brings it back into step`,
        },
      },
      controllerEvent: { type: "release-hold", by: command.by },
    };
  }
  if (context.latch) return refuse(`a fault is latched (${context.latch.kind}): reset it first`);
  if (signal.holdRefusal) return refuse(`cannot hold: ${signal.holdRefusal}`);
  const forMs = command.forMs ?? DEFAULT_HOLD_MS;
  const how = signal.held ? `hold extended (was ${signal.held.by}'s)` : "holding";
  return {
    outcome: {
      ok: true,
      result: {
        message: `${how}: stage ${signal.stage ?? "?"} stays for at most ${describeDuration(forMs)} (greenwave hold off to release; flash, a stop or a fault end it too)`,
        forMs,
      },
    },
    controllerEvent: { type: "hold", forMs, by: command.by },
  };
}

function decideLampTest(
  command: Extract<Command, { name: "lamp-test" }>,
  context: CommandContext,
): CommandDecision {
  const signal = context.signal;
  if (!signal) return refuse("this gateway cannot run a lamp test");
  const running = signal.lampTest?.state === "running" ? signal.lampTest : null;
  switch (command.action) {
    case "report":
      return { outcome: { ok: true, result: { report: signal.lampTest } }, controllerEvent: null };
    case "abort":
      if (!running)
        return {
          outcome: { ok: true, result: { message: "no lamp test is running" } },
          controllerEvent: null,
        };
      return {
        outcome: {
          ok: true,
          result: {
            message: `aborting the lamp test (${running.current ?? "between lamps"}): the lamp lit now ends through its clearances, then scheduled flash`,
          },
        },
        controllerEvent: { type: "abort-lamp-test", by: command.by },
      };
    case "start": {
      if (command.confirm !== true)
        return refuse(
          "a lamp test lights every lamp of the intersection in turn: it needs the operator's confirmation (confirm: true; greenwave lamp-test --confirm)",
        );
      if (signal.lampTestRefusal) return refuse(`cannot start a lamp test: ${signal.lampTestRefusal}`);
      const stepMs = command.stepMs ?? DEFAULT_LAMP_STEP_MS;
      const boundMs = signal.lampTestBoundMs(stepMs);
      return {
        outcome: {
          ok: true,
          result: {
            message: `lamp test started: ${signal.lampChannels} lamps, each lit alone for ${formatSeconds(stepMs)} (a green or WALK its minimum and clearances), at most ${formatSeconds(boundMs)}`,
            channels: signal.lampChannels,
            stepMs,
            boundMs,
          },
        },
        controllerEvent: { type: "lamp-test", id: command.id, by: command.by, stepMs },
      };
    }
  }
}
