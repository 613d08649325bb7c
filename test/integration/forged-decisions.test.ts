import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadPlan } from "../../gateway/config/load.js";
import { planDigest } from "../../gateway/config/plan-digest.js";
import {
  type CorridorBody,
  decisionTopic,
  inboxFilter,
  inboxTopic,
  parseCorridorMessage,
} from "../../gateway/protocol/corridor-messages.js";
import { PROTOCOL_VERSION, TOPIC_ROOT } from "../../gateway/protocol/topics.js";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { Cleanups, pushRig, TEST_CORRIDOR } from "../support/push-rig.js";

/**
 * Forged and replayed decisions over the real embedded broker (aedes on loopback, with users and the
 * ACL) and four real gateways on their SQLite stores (issue 20, item 2). An operator prepares a change
 * and disappears; a gateway's stolen credentials then try to decide it at another gateway — by an inbox
 * decision, an answer, a decision record retained under their own branch naming the operator, with no
 * signature, a made-up one, or the operator's real signature of another transaction — and, as a
 * participant, by lying that they never voted. The gateway stays in doubt through all of it; only its
 * coordinator's decision ends the doubt, the same everywhere: no split.
 */
const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const CORRIDOR = TEST_CORRIDOR;
const world = () => pushRig(cleanups);

describe("decisions bound to their coordinator, over the embedded broker with 4 gateways", () => {
  it("a gateway's stolen credentials cannot decide another's transaction: forged, replayed and relayed decisions and records leave it in doubt; its coordinator's decision ends it everywhere", async () => {
    const w = await world();
    // Every corridor message on the wire, as an operator may watch it: the real decisions' signatures.
    const watcher = await w.login("watcher");
    const seen: { to: string; from: string; body: CorridorBody }[] = [];
    watcher.on("message", (topic, payload) => {
      const parsed = parseCorridorMessage(topic, payload);
      if (parsed.ok) seen.push(parsed.envelope);
    });
    await watcher.subscribeAsync(`${TOPIC_ROOT}/${CORRIDOR}/+/inbox/+`, { qos: 1 });

    // A real change, committed: its COMMITs carry alice's run's signature.
    const first = await w.push("next");
    expect(first.outcome, first.reason ?? "").toBe("committed");
    await until("a signed COMMIT seen", 5000, () =>
      seen.some((m) => m.body.type === "decision" && m.body.txnId === first.txnId),
    );
    const commit = seen.find((m) => m.body.type === "decision" && m.body.txnId === first.txnId)?.body;
    const realSignature = commit?.type === "decision" ? commit.signature : undefined;
    expect(realSignature).toMatch(/^[A-Za-z0-9+/]{86}==$/);
    const prepare = seen.find((m) => m.body.type === "prepare" && m.body.txnId === first.txnId)?.body;
    expect(prepare).toMatchObject({ decisionKey: expect.stringMatching(/^[\w-]{43}$/) });

    // alice prepares a second change at every gateway, and disappears before deciding.
    const halted = await w.push("shifted", { haltAfter: "prepare-sent" });
    expect(halted.outcome).toBe("halted");
    await until("everyone prepared", 5000, () =>
      [...w.corridor.nodes.values()].every((n) => n.participant.inDoubt?.txnId === halted.txnId),
    );

    // x1's credentials, stolen. x1 is a participant of the transaction: the ACL lets it write to any
    // inbox under its own name and retain records under its own branch — nothing more.
    const x1 = await w.login("gw-x1");
    const send = (to: string, body: CorridorBody) =>
      x1.publishAsync(
        inboxTopic(CORRIDOR, to, "x1"),
        JSON.stringify({ v: PROTOCOL_VERSION, from: "x1", to, sentAtWallMs: Date.now(), body }),
        { qos: 1 },
      );
    const madeUp = Buffer.alloc(64, 7).toString("base64");
    const txnId = halted.txnId;
    // At x3: COMMIT unsigned, with a made-up signature, with alice's real signature of the first change.
    await send("x3", { type: "decision", txnId, outcome: "committed", token: 1 });
    await send("x3", { type: "decision", txnId, outcome: "committed", token: 1, signature: madeUp });
    await send("x3", { type: "decision", txnId, outcome: "committed", token: 1, signature: realSignature });
    // An answer relaying alice's "commit" with that replayed signature; and, at x2, x1's own lie that it
    // never voted (an unsigned "aborted" answer, and an unsigned ABORT).
    await send("x3", { type: "answer", txnId, answer: "committed", signature: realSignature });
    await send("x2", { type: "answer", txnId, answer: "aborted" });
    await send("x2", { type: "decision", txnId, outcome: "aborted", token: 1 });
    // A decision record retained under x1's own branch, naming alice as its coordinator.
    await x1.publishAsync(
      decisionTopic(CORRIDOR, "x1", txnId),
      JSON.stringify({
        v: PROTOCOL_VERSION,
        txnId,
        coordinator: "@alice",
        outcome: "committed",
        participants: ["x1", "x2", "x3", "x4"],
        activationWallMs: Date.now() + 5000,
        signature: realSignature,
      }),
      { qos: 1, retain: true },
    );
    // Each was heard and refused, saying why, in the gateway's audit trail.
    const reports = (id: string) =>
      (w.corridor.stores.get(id)?.events(0, 10_000) ?? [])
        .filter((e) => e.type === "txn-report" && String(e.detail.message).includes(txnId))
        .map((e) => String(e.detail.message));
    await until("x3 refused the forgeries", 5000, () => reports("x3").length >= 5);
    await until("x2 refused the lies", 5000, () => reports("x2").length >= 2);
    expect(reports("x3").join("\n")).toMatch(/does not verify with the coordinator's decision key/);
    expect(reports("x3").join("\n")).toMatch(
      /x1's "committed" .* carries no signature of its coordinator @alice/,
    );
    expect(reports("x3").join("\n")).toMatch(/\(record\)/);
    expect(reports("x2").join("\n")).toMatch(/a participant's own word cannot end the doubt/);
    for (const node of w.corridor.nodes.values()) {
      expect(node.participant.inDoubt?.txnId).toBe(txnId);
      expect(node.runner.controller.seq.pending.map((p) => p.plan.planId)).not.toContain("shifted");
    }
    for (const store of w.corridor.stores.values()) expect(store.transaction(txnId)?.phase).toBe("prepared");

    // alice comes back: her log has no commit, so she answers abort (presumed), and that is the
    // outcome everywhere.
    expect(await w.recover()).toEqual([]);
    await until("every gateway aborted", 15_000, () =>
      [...w.corridor.stores.values()].every((s) => s.transaction(txnId)?.phase === "aborted"),
    );
  }, 60_000);
});

describe("fencing tokens bound to their lease and transaction, over the embedded broker with 4 gateways", () => {
  it("a made-up token and a lease taken for another transaction, sent with a gateway's stolen credentials, get a no and raise no fencing floor: the operator's next pushes commit, also after a restart", async () => {
    const w = await world();
    const x1 = await w.login("gw-x1");
    const replies: CorridorBody[] = [];
    x1.on("message", (topic, payload) => {
      const parsed = parseCorridorMessage(topic, payload);
      if (parsed.ok && parsed.envelope.from === "x2") replies.push(parsed.envelope.body);
    });
    await x1.subscribeAsync(inboxFilter(CORRIDOR, "x1"), { qos: 1 });
    const send = (body: CorridorBody) =>
      x1.publishAsync(
        inboxTopic(CORRIDOR, "x2", "x1"),
        JSON.stringify({ v: PROTOCOL_VERSION, from: "x1", to: "x2", sentAtWallMs: Date.now(), body }),
        { qos: 1 },
      );
    const planFile = loadPlan(join(w.fixture.plans, "next.yaml")).raw;
    const prepare = (txnId: string, token: number): CorridorBody => ({
      type: "prepare",
      txnId,
      token,
      participants: [...w.fixture.ids],
      plan: { id: planFile.id, version: planFile.version, digest: planDigest(planFile) },
      planFile,
      activationWallMs: Date.now() + 10_000,
    });
    const voteOf = (txnId: string) =>
      until(`x2's vote on ${txnId}`, 5000, () =>
        replies.find(
          (r): r is Extract<CorridorBody, { type: "vote" }> => r.type === "vote" && r.txnId === txnId,
        ),
      );

    // A token x2's lease authority never granted (the largest there is): once taken as a floor, it
    // would have refused every later push, for good.
    await send(prepare("x1-forged", Number.MAX_SAFE_INTEGER));
    const forged = await voteOf("x1-forged");
    expect(forged.yes).toBe(false);
    expect(forged.reason).toMatch(
      /fencing token 9007199254740991 was not granted to x1 by this intersection's lease authority \(no lease is held here\)/,
    );

    // A real lease, taken for one transaction, used for another.
    await send({ type: "acquire", requestId: "x1-a/0/x2", ttlMs: 5000 });
    const granted = await until("x2 grants x1 the lease", 5000, () =>
      replies.find((r) => r.type === "lease" && r.reply.type === "granted"),
    );
    const token = granted.type === "lease" && granted.reply.type === "granted" ? granted.reply.token : 0;
    await send(prepare("x1-b", token));
    const other = await voteOf("x1-b");
    expect(other.yes).toBe(false);
    expect(other.reason).toMatch(
      /was taken for another transaction \(request x1-a\/0\/x2\), not x1-b: a lease serves the transaction it was taken for/,
    );
    await send({ type: "release", token });
    await until("x2's lease released", 5000, () => w.corridor.nodes.get("x2")?.participant.lock === null);

    // No floor was raised: the operator's pushes commit, before and after x2 restarts.
    const first = await w.push("next");
    expect(first.outcome, first.reason ?? "").toBe("committed");
    await w.corridor.restart("x2");
    await until("x2 online again", 10_000, () => w.corridor.nodes.get("x2")?.mqttConnected === true);
    const second = await w.push("shifted");
    expect(second.outcome, second.reason ?? "").toBe("committed");
    expect(w.corridor.stores.get("x2")?.highestToken()).toBeLessThan(Number.MAX_SAFE_INTEGER);
  }, 60_000);
});
