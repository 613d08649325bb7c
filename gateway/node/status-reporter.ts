import { setupInForce } from "./config-reload.js";
import type { Status } from "../protocol/messages.js";
import type { ClockSyncReading } from "../shell/clock-sync.js";
import { shortDigest } from "../core/corridor/plan-identity.js";
import { PROTOCOL_VERSION } from "../protocol/topics.js";
import type { BrokerLink } from "./broker-link.js";
import type { CorridorParticipant } from "./corridor-participant.js";
import { CycleStatusReader } from "./cycle-status.js";
import type { GatewayParts } from "./gateway-parts.js";
import { degradeOnStoreFailure } from "./store-guard.js";

/**
 * The gateway's status: built from the controller, the participant and the store; published retained
 * whenever it changes (and on every connect); and its health for `/healthz`.
 */
export class StatusReporter {
  private lastPublishedKey = "";
  /** When the newest transaction's plan took effect after its instant, by how much (from plan-activated). */
  private lastActivation: { txnId: string; lateByMs: number } | null = null;
  private readonly cycle = new CycleStatusReader();

  private readonly position: number;
  private readonly link: BrokerLink | null;

  constructor(
    private readonly parts: GatewayParts,
    private readonly participant: CorridorParticipant,
    private readonly clockReading: () => ClockSyncReading | null = () => null,
    private readonly release: Status["release"] = undefined,
    private readonly schedule: () => Status["schedule"] = () => undefined,
  ) {
    const { setup, ids, bus } = parts;
    this.link = parts.link;
    this.position = Math.max(
      0,
      setup.corridor.raw.intersections.findIndex((member) => member.id === ids.intersection),
    );
    bus.on("changed", () => this.publishIfChanged());
    bus.on("connected", () => {
      this.lastPublishedKey = "";
      this.publishIfChanged();
    });
    bus.on("signal", (event) => {
      if (event.type === "plan-activated" && event.txnId)
        this.lastActivation = { txnId: event.txnId, lateByMs: event.lateByMs };
    });
  }

  status(): Status {
    const { runner, clock, ids, setup } = this.parts;
    const { participant } = this;
    const seq = runner.controller.seq;
    const latch = runner.controller.mon.latch;
    const clockSync = this.clockReading();
    return {
      v: PROTOCOL_VERSION,
      corridor: ids.corridor,
      intersection: ids.intersection,
      // After a SIGHUP reload, the reloaded file's: a name runs no lamp, so it waits for no boundary.
      name: setupInForce(setup).intersection.raw.name,
      position: this.position,
      mode: runner.mode,
      plan: {
        id: seq.plan.planId,
        version: seq.plan.version,
        ...(seq.plan.digest !== undefined ? { digest: shortDigest(seq.plan.digest) } : {}),
      },
      fault: latch
        ? {
            kind: latch.kind,
            message: latch.message,
            groups: [...latch.groups],
            at: new Date(latch.atWallMs).toISOString(),
          }
        : null,
      lock: participant.lock,
      lastTxn: this.lastTxn(),
      // A latched fault flashes the lamps whatever the sequencer holds: no cycle runs then.
      cycle: latch ? null : this.cycle.read(seq, clock.now()),
      ...(this.release ? { release: this.release } : {}),
      ...scheduleField(this.schedule()),
      ...(clockSync
        ? { clock: { state: clockSync.state, source: clockSync.source, offsetMs: clockSync.offsetMs } }
        : {}),
      at: new Date(clock.now().wallMs).toISOString(),
    };
  }

  health(stopped: boolean) {
    const { runner, store, clock, log } = this.parts;
    const last = runner.lastTickMono;
    const tickAgeMs = last === null ? null : clock.now().monoMs - last;
    const ticking = tickAgeMs !== null && tickAgeMs < 10 * runner.tickMs;
    const latch = runner.controller.mon.latch;
    const latchDurable = runner.latchDurable;
    return {
      // A latch held in memory only is not healthy: a restart now would lose it.
      healthy: ticking && !stopped && latchDurable,
      latchDurable,
      latchProblem: latch ? (store.latchDurability.problem ?? null) : null,
      intersection: this.parts.ids.intersection,
      mode: runner.mode,
      fault: latch?.message ?? null,
      lastTickAgeMs: tickAgeMs,
      mqtt: this.link ? (this.link.connected ? "connected" : "disconnected") : "not configured",
      outboxDepth: degradeOnStoreFailure(log, "outbox depth unknown", () => store.outboxDepth(), null),
    };
  }

  /**
   * Is the intersection in service? Not in a latched fault (all-red flash until an operator resets
   * it), not starting up, not stopping, and the process healthy. Scheduled flash is an operator's
   * choice: in service.
   */
  readiness(stopped: boolean) {
    const health = this.health(stopped);
    const mode = this.parts.runner.mode;
    const why = !health.healthy
      ? "the gateway is not healthy (see /healthz)"
      : mode === "fault"
        ? `fault latched: ${health.fault ?? ""} (all-red flash until an operator resets it)`
        : mode === "startup"
          ? "starting up (flash, then all-red)"
          : mode === "stopping"
            ? "stopping"
            : null;
    return { ready: why === null, why, intersection: health.intersection, mode, fault: health.fault };
  }

  publishIfChanged(): void {
    if (!this.link?.connected) return;
    const status = this.status();
    const key = JSON.stringify({ ...status, at: "" });
    if (key === this.lastPublishedKey) return;
    this.lastPublishedKey = key;
    this.link.publish(this.parts.topics.status, JSON.stringify(status), { retain: true }).catch(() => {
      this.lastPublishedKey = ""; // published again on the next change or connect
    });
  }

  private lastTxn(): Status["lastTxn"] {
    const { store, clock, log } = this.parts;
    const { participant } = this;
    const doubt = participant.inDoubt;
    if (doubt)
      return { id: doubt.txnId, outcome: "in-doubt", at: new Date(clock.now().wallMs).toISOString() };
    const last = degradeOnStoreFailure(log, "last transaction unknown", () => store.lastTransaction(), null);
    if (!last) return null;
    const late = this.lastActivation?.txnId === last.txnId ? this.lastActivation.lateByMs : null;
    return {
      id: last.txnId,
      outcome: last.phase,
      at: new Date(last.atWallMs).toISOString(),
      ...(late !== null ? { lateByMs: late } : {}),
    };
  }
}

function scheduleField(schedule: Status["schedule"]): Pick<Status, "schedule"> {
  return schedule === undefined ? {} : { schedule };
}
