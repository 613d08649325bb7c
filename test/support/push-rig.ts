import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { expect } from "vitest";
import { startBroker } from "../../gateway/broker/broker.js";
import { type BrokerUser, hashPassword } from "../../gateway/broker/users.js";
import { loadCorridor, loadPlan } from "../../gateway/config/load.js";
import { DEFAULT_COORDINATOR_CONFIG } from "../../gateway/core/corridor/coordinator.js";
import type { CorridorSettings } from "../../gateway/node/corridor-participant.js";
import { type PushOptions, pushPlan, recoverLog } from "../../gateway/operator/plan-push.js";
import { inboxFilter, parseCorridorMessage } from "../../gateway/protocol/corridor-messages.js";
import { CoordinatorHost } from "../../gateway/shell/corridor/coordinator-host.js";
import { CoordinatorStore } from "../../gateway/store/coordinator-store.js";
import type { GatewayStore } from "../../gateway/store/store.js";
import { writeCorridorFixture } from "../../simulators/fixtures/corridor-fixture.js";
import { startCorridorNodes, until } from "../../simulators/fixtures/mqtt-corridor.js";

/**
 * The corridor of the push tests (signed plans and decisions, forged tokens, cancels, keyrings): the
 * embedded broker on loopback — with users and the ACL (alice an operator, gw-x1… the gateways), or
 * open — and the fixture corridor's four gateways in this process on their SQLite stores, with the
 * operator alice's coordinator and its decision log, and a gateway's credentials to attack with.
 */

export const TEST_CORRIDOR = "test-corridor";
export const RIG_PASSWORD = "a push rig's password";
/** Short protocol timeouts: a test waits seconds, not the field's minutes, for a silent party. */
export const FAST = { requestTimeoutMs: 1000, voteTimeoutMs: 2000, maxAcquireAttempts: 3, resendMs: 300 };

/** What a test set up and must take down, in reverse order, whether it passed or not. */
export class Cleanups {
  private readonly steps: (() => Promise<void> | void)[] = [];

  defer(step: () => Promise<void> | void): void {
    this.steps.push(step);
  }

  tempDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    this.defer(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  async run(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) await step();
  }
}

export interface PushRigOptions {
  /** With users and the ACL (default), or an open broker. */
  readonly secured?: boolean;
  readonly corridorSettings?: (id: string, store: GatewayStore) => CorridorSettings;
}

export async function pushRig(cleanups: Cleanups, options: PushRigOptions = {}) {
  const secured = options.secured ?? true;
  const fixture = writeCorridorFixture(4);
  cleanups.defer(() => rmSync(fixture.dir, { recursive: true, force: true }));
  const hash = secured ? await hashPassword(RIG_PASSWORD) : "";
  const users = secured
    ? new Map<string, BrokerUser>([
        ["alice", { passwordHash: hash, principal: { role: "operator", username: "alice" } }],
        ["watcher", { passwordHash: hash, principal: { role: "operator", username: "watcher" } }],
        ...fixture.ids.map((id): [string, BrokerUser] => [
          `gw-${id}`,
          {
            passwordHash: hash,
            principal: { role: "gateway", username: `gw-${id}`, corridor: TEST_CORRIDOR, intersection: id },
          },
        ]),
      ])
    : null;
  const broker = await startBroker({ host: "127.0.0.1", port: 0, users });
  cleanups.defer(() => broker.close());
  const corridor = await startCorridorNodes(broker.url, {
    corridorFile: fixture.corridor,
    ...(secured ? { credentials: (id: string) => ({ username: `gw-${id}`, password: RIG_PASSWORD }) } : {}),
    ...(options.corridorSettings ? { corridorSettings: options.corridorSettings } : {}),
  });
  cleanups.defer(() => corridor.stop());
  await until("every gateway online", 10_000, () =>
    [...corridor.nodes.values()].every((node) => node.mqttConnected),
  );
  const loaded = loadCorridor(fixture.corridor);
  const coordinatorDir = cleanups.tempDir("greenwave-coordinator-");
  /** alice's coordinator log, open for one command (as `plan push` opens it). */
  const withCoordinator = async <T>(work: (store: CoordinatorStore) => Promise<T>): Promise<T> => {
    const store = CoordinatorStore.open(coordinatorDir);
    try {
      return await work(store);
    } finally {
      store.close();
    }
  };
  /** What every command of alice's needs: the broker, her login, the corridor, the fast timeouts. */
  const alice = {
    url: broker.url,
    ...(secured ? { username: "alice", password: RIG_PASSWORD } : {}),
    name: "alice",
    corridor: loaded,
    ackTimeoutMs: 3000,
    config: FAST,
  };
  const plan = (name: string) => loadPlan(join(fixture.plans, `${name}.yaml`));
  const push = (name: string, overrides: Partial<PushOptions> = {}) =>
    withCoordinator((store) =>
      pushPlan({ ...alice, plan: plan(name), atWallMs: null, leadMs: 3000, store, ...overrides }),
    );
  /** alice back after a halt: her log's committed transactions finished, questions answered. */
  const recover = (ackTimeoutMs = 1000) =>
    withCoordinator((store) => recoverLog({ ...alice, store, ackTimeoutMs, answerForMs: 8000 }));
  const login = async (username: string): Promise<MqttClient> => {
    const client = await mqtt.connectAsync(broker.url, {
      protocolVersion: 4,
      reconnectPeriod: 0,
      clientId: `${username}-${Math.random().toString(36).slice(2)}`,
      username,
      password: RIG_PASSWORD,
    });
    cleanups.defer(() => client.endAsync(true));
    return client;
  };
  /**
   * Gateway `id`'s credentials, stolen, coordinating on the wire as `id` (which the ACL allows a
   * gateway): a coordinator host of its own, ticking, fed from `id`'s inbox.
   */
  const stolenCoordinator = async (id: string): Promise<CoordinatorHost> => {
    const client = await login(`gw-${id}`);
    const store = CoordinatorStore.open(cleanups.tempDir("greenwave-stolen-"));
    cleanups.defer(() => store.close());
    const host = new CoordinatorHost(
      id,
      TEST_CORRIDOR,
      { ...DEFAULT_COORDINATOR_CONFIG, ...FAST },
      store,
      (topic, payload) => client.publish(topic, payload, { qos: 1 }),
    );
    client.on("message", (topic, payload) => {
      const parsed = parseCorridorMessage(topic, payload);
      if (parsed.ok) host.receive(parsed.envelope, true);
    });
    await client.subscribeAsync(inboxFilter(TEST_CORRIDOR, id), { qos: 1 });
    const timer = setInterval(() => host.tick(), 50);
    cleanups.defer(() => clearInterval(timer));
    return host;
  };
  /**
   * Aborted, and every gateway voted no for this reason: the coordinator stops at the first no, so the
   * others' votes are read from each gateway's audit trail (`txn-vote-no`, with the reason).
   */
  const refusedEverywhere = async (
    result: { txnId: string; outcome: string; reason: string | null },
    reason: RegExp,
  ): Promise<void> => {
    expect(result.outcome).toBe("aborted");
    expect(result.reason).toMatch(/ voted no: /);
    expect(result.reason?.replace(/^\S+ voted no: /, "")).toMatch(reason);
    const refusals = () =>
      [...corridor.stores.values()].map(
        (store) =>
          store.events(0, 10_000).find((e) => e.type === "txn-vote-no" && e.detail.txnId === result.txnId)
            ?.detail.reason,
      );
    await until("every gateway's no vote in its audit trail", 5000, () =>
      refusals().every((r) => r !== undefined),
    );
    for (const r of refusals()) expect(String(r)).toMatch(reason);
  };
  return {
    fixture,
    broker,
    corridor,
    loaded,
    alice,
    plan,
    withCoordinator,
    push,
    recover,
    login,
    stolenCoordinator,
    refusedEverywhere,
  };
}

export type PushRig = Awaited<ReturnType<typeof pushRig>>;
