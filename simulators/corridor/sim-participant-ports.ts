import { type ParticipantStep, stepParticipant } from "../../gateway/core/corridor/participant.js";
import type { PrepareTimingRules } from "../../gateway/core/corridor/prepare-check.js";
import { InvariantViolation } from "../../gateway/core/invariant.js";
import type { CommittedChange } from "../../gateway/core/schedule/committed-change.js";
import type { Now } from "../../gateway/core/time.js";
import type { CorridorBody } from "../../gateway/protocol/corridor-messages.js";
import type {
  ParticipantDisk,
  ParticipantShellHost,
  PlanCheck,
} from "../../gateway/shell/corridor/participant-ports.js";
import type { ParticipantPorts } from "../../gateway/shell/corridor/participant-shell.js";
import type { InvariantChecker } from "./checker.js";
import type { Mutation } from "./mutations.js";
import type { SimDisk } from "./sim-disk.js";

/**
 * The simulator's side of the production participant shell (gateway/shell/corridor/participant-shell.ts):
 * its ports over the simulated disk, network and clock, with the checker's hooks, the buggify crash
 * points and the mutations living here, in the ports and around the machine's step — never in the
 * product code.
 */

/** A simulated process dies here: thrown out of the shell by a port, caught where the world called in. */
export class SimulatedCrash extends Error {
  override readonly name = "SimulatedCrash";
}

/**
 * A machine's `invariant()` broke. Production refuses the message and logs it; the simulator fails the
 * run (`product-invariant`), so it travels out of the shell as another class than `InvariantViolation`.
 */
export class MachineInvariantBroken extends Error {
  override readonly name = "MachineInvariantBroken";
}

/** What the ports need of the simulated gateway around them. */
export interface SimParticipantSite {
  readonly id: string;
  readonly disk: SimDisk;
  readonly checker: InvariantChecker;
  readonly mutation: Mutation | null;
  readonly rules: PrepareTimingRules;
  now(): Now;
  /** The world's send: addressed and stamped as on MQTT. */
  send(to: string, body: CorridorBody): void;
  /** Fault injection at the protocol's critical points: true means "crashed right here". */
  crashHere(point: string): boolean;
  /** PREPARED was written (or, mutated, skipped) at this local monotonic instant. */
  prepared(atMonoMs: number): void;
  readonly planCheck: PlanCheck;
  readonly host: ParticipantShellHost;
  trace(line: string): void;
}

export function simParticipantPorts(site: SimParticipantSite): ParticipantPorts {
  return {
    me: site.id,
    disk: simParticipantDisk(site),
    network: {
      send: (to, body) => {
        site.send(to, body);
        if (body.type !== "lease" || body.reply.type !== "granted") return;
        site.checker.tokenIssued(site.id, body.reply.token, body.reply.requestId);
        // The lease lives only in the authority's memory: a restart voids it under its holder.
        if (site.crashHere("after granting a lease")) throw new SimulatedCrash();
      },
    },
    clock: { now: () => site.now() },
    planCheck: site.planCheck,
    host: site.host,
    log: {
      warn: (message) => site.trace(`${site.id} report: ${message}`),
      error: (_detail, message) => site.trace(`${site.id} error: ${message}`),
    },
    // The simulated platform does not know its clock's error (its skew is the checks' to catch).
    settings: { ...site.rules, clockErrorMs: () => null },
    step: simStepParticipant(site.mutation),
  };
}

/** The sim disk with the checker's hooks, the `skip-forced-prepare` mutation and crash points after forced writes. */
function simParticipantDisk(site: SimParticipantSite): ParticipantDisk {
  const { disk, checker, id } = site;
  return {
    leaseEpoch: () => disk.leaseEpoch(),
    persistLeaseEpoch: (epoch) => {
      disk.persistLeaseEpoch(epoch);
      checker.epochStarted(id, epoch);
    },
    participantRecord: (max) => disk.participantRecord(max),
    persistPrepared: (txn, planBody: CommittedChange | null, highestToken) => {
      site.prepared(site.now().monoMs);
      checker.prepared(id, txn);
      if (site.mutation !== "skip-forced-prepare") disk.persistPrepared(txn, planBody, highestToken);
      if (site.crashHere("after persist-prepared")) throw new SimulatedCrash();
    },
    persistOutcome: (txnId, outcome, forced, _atWallMs, signature) => {
      disk.persistOutcome(txnId, outcome, forced, 0, signature);
      if (outcome === "aborted") checker.aborted(id, txnId, site.now().wallMs);
      if (forced && site.crashHere("after persist-outcome")) throw new SimulatedCrash();
    },
    planBody: (planId, version) => disk.planBody(planId, version),
    committedTransactions: (limit) => disk.committedTransactions(limit),
    transactionRecord: (txnId) => disk.transactionRecord(txnId),
    planInForce: () => disk.planInForce(),
  };
}

/**
 * `stepParticipant` as the simulator runs it: the machine's invariants fail the run; the
 * `ignore-fencing-token` mutation lets the machine see no fencing floor at all on a PREPARE, and the
 * `skip-decision-signature` one has it see every decision as signed by its coordinator.
 */
export function simStepParticipant(mutation: Mutation | null): typeof stepParticipant {
  const step: typeof stepParticipant = (state, event, nowMonoMs) => {
    try {
      return stepParticipant(state, event, nowMonoMs);
    } catch (error) {
      if (error instanceof InvariantViolation) throw new MachineInvariantBroken(error.message);
      throw error;
    }
  };
  if (mutation === "skip-decision-signature")
    return (state, event, nowMonoMs) =>
      step(state, event.type === "decision" ? { ...event, proof: "valid" } : event, nowMonoMs);
  if (mutation !== "ignore-fencing-token") return step;
  return (state, event, nowMonoMs): ParticipantStep => {
    if (event.type !== "prepare") return step(state, event, nowMonoMs);
    const unfenced = step(
      { ...state, highestToken: 0 },
      { ...event, lastIssuedToken: 0, lease: { holder: event.txn.coordinator, token: event.txn.token } },
      nowMonoMs,
    );
    return {
      ...unfenced,
      state: { ...unfenced.state, highestToken: Math.max(unfenced.state.highestToken, state.highestToken) },
    };
  };
}
