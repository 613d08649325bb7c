import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBroker } from "../gateway/broker/broker.js";
import { loadCorridor, loadPlan } from "../gateway/config/load.js";
import { planDigest } from "../gateway/config/plan-digest.js";
import type { SignedSubject } from "../gateway/core/corridor/plan-signature.js";
import { DEFAULT_CORRIDOR_SETTINGS } from "../gateway/node/corridor-participant.js";
import {
  generateSigningKey,
  loadSigningKey,
  readSignatureFile,
  signatureForPush,
  signSubject,
} from "../gateway/operator/plan-signing.js";
import { pushPlan } from "../gateway/operator/plan-push.js";
import type { SignatureCheck } from "../gateway/shell/corridor/participant-ports.js";
import { PlanTrust } from "../gateway/shell/corridor/plan-trust.js";
import { CoordinatorStore } from "../gateway/store/coordinator-store.js";
import { writeCorridorFixture } from "../simulators/fixtures/corridor-fixture.js";
import { checkDecision, newDecisionKeyPair, signDecision } from "../gateway/shell/corridor/decision-keys.js";
import { startCorridorNodes } from "../simulators/fixtures/mqtt-corridor.js";
import { type BenchResult, elapsedMs, summarize } from "./stats.js";

/**
 * What signed plans cost a `plan push` (issue 20, item 3; docs/threat-model.md#signed-plans): the same
 * corridor, the same gateways, pushes alternating between unsigned (no trusted keys: what a gateway
 * without keys does) and signed (every gateway checks the signature against its trusted-keys directory,
 * read again for each PREPARE, and the command reads and checks PLAN.sig), so that both halves see the
 * same machine at the same moment. Plus the parts alone: signing, and one gateway's check.
 */
const SIZES = [
  { n: 4, pushes: 120 },
  { n: 16, pushes: 80 },
] as const;

/** Between pushes: four messages per gateway per push stay under its 20/s per sender. */
const PAUSE_MS = 250;

export async function benchSignedPush(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const keys = mkdtempSync(join(tmpdir(), "greenwave-bench-keys-"));
  const trusted = mkdtempSync(join(tmpdir(), "greenwave-bench-trusted-"));
  const broker = await startBroker({ host: "127.0.0.1", port: 0, users: null });
  try {
    const key = generateSigningKey("bench", keys);
    copyFileSync(key.publicKeyFile, join(trusted, "bench.pub"));
    const signingKey = loadSigningKey(key.privateKeyFile);
    for (const { n, pushes } of SIZES) {
      const fixture = writeCorridorFixture(n);
      const coordinatorDir = mkdtempSync(join(tmpdir(), "greenwave-bench-signed-"));
      // One switch for every gateway's check: off for the unsigned pushes, on for the signed ones.
      let checking = false;
      const check = (trust: PlanTrust): SignatureCheck => ({
        check: (subject, signature) => (checking ? trust.check(subject, signature) : { ok: true }),
        checkKeyring: (planFile, signatures, known) => trust.checkKeyring(planFile, signatures, known),
      });
      const corridor = await startCorridorNodes(broker.url, {
        corridorFile: fixture.corridor,
        corridorSettings: () => ({
          ...DEFAULT_CORRIDOR_SETTINGS,
          planTrust: check(new PlanTrust(trusted, "test-corridor")),
        }),
      });
      const store = CoordinatorStore.open(coordinatorDir);
      try {
        const deadline = performance.now() + 30_000;
        while (
          ![...corridor.nodes.values()].every((node) => node.mqttConnected) &&
          performance.now() < deadline
        )
          await new Promise((r) => setTimeout(r, 50));
        const loadedCorridor = loadCorridor(fixture.corridor);
        // PLAN.sig beside each plan, as `greenwave plan sign` writes it.
        for (const name of ["next", "base"]) {
          const raw = loadPlan(join(fixture.plans, `${name}.yaml`)).raw;
          const subject: SignedSubject = {
            corridor: "test-corridor",
            kind: "plan",
            id: raw.id,
            version: raw.version,
            digest: planDigest(raw),
          };
          writeFileSync(
            join(fixture.plans, `${name}.yaml.sig`),
            JSON.stringify(signSubject(subject, signingKey, Date.now())),
          );
        }
        const samples = { unsigned: [] as number[], signed: [] as number[] };
        const transaction = { unsigned: [] as number[], signed: [] as number[] };
        const refused: string[] = [];
        // Each pair's signed minus unsigned push: what drift in the machine's load cancels out of.
        const pairs: number[] = [];
        let pairStart: { signed: boolean; ms: number } | null = null;
        for (let i = 0; i < pushes; i++) {
          // Paced, untimed: back to back, one coordinator's messages would pass a gateway's per-sender
          // rate limit (20/s) and be dropped, and some pushes abort (docs/protocol.md).
          await new Promise((r) => setTimeout(r, PAUSE_MS));
          // Pairs of pushes, the order within each pair alternating: neither half always goes first.
          const signed = (i % 2 === 0) === (Math.floor(i / 2) % 2 === 0);
          checking = signed;
          const file = join(fixture.plans, Math.floor(i / 2) % 2 === 0 ? "next.yaml" : "base.yaml");
          const t = process.hrtime.bigint();
          const plan = loadPlan(file);
          const signature = signed
            ? signatureForPush(readSignatureFile(`${file}.sig`), `${file}.sig`, {
                corridor: "test-corridor",
                kind: "plan",
                id: plan.raw.id,
                version: plan.raw.version,
                digest: planDigest(plan.raw),
              })
            : undefined;
          const result = await pushPlan({
            url: broker.url,
            name: "bench",
            corridor: loadedCorridor,
            plan,
            atWallMs: null,
            leadMs: 5000,
            store,
            ackTimeoutMs: 10_000,
            config: { voteTimeoutMs: 10_000, requestTimeoutMs: 5000 },
            ...(signature ? { signature } : {}),
          });
          const ms = elapsedMs(t);
          if (result.outcome !== "committed" || result.unacknowledged.length > 0) {
            pairStart = null;
            refused.push(`${signed ? "signed" : "unsigned"}: ${result.outcome} ${result.reason ?? ""}`);
            continue;
          }
          samples[signed ? "signed" : "unsigned"].push(ms);
          if (i % 2 === 0) pairStart = { signed, ms };
          else if (pairStart) pairs.push(signed ? ms - pairStart.ms : pairStart.ms - ms);
          transaction[signed ? "signed" : "unsigned"].push(result.durationMs);
        }
        const median = (values: number[]) => (values.length ? summarize("", "", values).median : Number.NaN);
        const unsigned = summarize(
          `plan push, unsigned, ${n} gateways (in-process), aedes`,
          "ms",
          samples.unsigned,
          {
            transactionMedianMs: median(transaction.unsigned),
            notCommitted: refused.length,
            ...(refused.length ? { firstNotCommitted: refused[0] as string } : {}),
          },
        );
        const signedResult = summarize(
          `plan push, signed and checked by every gateway, ${n} gateways (in-process), aedes`,
          "ms",
          samples.signed,
          {
            transactionMedianMs: median(transaction.signed),
            ratioToUnsigned: Number((median(samples.signed) / unsigned.median).toFixed(3)),
            extraMedianMs: Number((median(samples.signed) - unsigned.median).toFixed(2)),
            pairedExtraMedianMs: Number(median(pairs).toFixed(2)),
            pairs: pairs.length,
          },
        );
        results.push(unsigned, signedResult);
      } finally {
        store.close();
        await corridor.stop();
        rmSync(fixture.dir, { recursive: true, force: true });
        rmSync(coordinatorDir, { recursive: true, force: true });
      }
    }
    // The parts alone: `plan sign` (once per plan, offline), and one gateway's check of a PREPARE
    // (its keys directory read again, the Ed25519 verification).
    const subject: SignedSubject = {
      corridor: "c",
      kind: "plan",
      id: "p",
      version: 1,
      digest: "a".repeat(64),
    };
    const signs: number[] = [];
    let file = signSubject(subject, signingKey, 0);
    for (let i = 0; i < 520; i++) {
      const t = process.hrtime.bigint();
      file = signSubject(subject, signingKey, 0);
      if (i >= 20) signs.push(elapsedMs(t) * 1000);
    }
    const trust = new PlanTrust(trusted, "c");
    const wire = { signer: file.signer, key: file.key, value: file.value };
    const { corridor: _c, ...own } = subject;
    const checks: number[] = [];
    for (let i = 0; i < 520; i++) {
      const t = process.hrtime.bigint();
      if (!trust.check(own, wire).ok) throw new Error("the bench's own signature does not verify");
      if (i >= 20) checks.push(elapsedMs(t) * 1000);
    }
    // Signed decisions (always on, in both halves above): a run's key pair and its signature of the
    // decision at the coordinator, the check of a decision at a participant in doubt.
    const txn = {
      txnId: "alice-bench-1",
      coordinator: "@alice",
      plan: { planId: "p", version: 1, digest: "a".repeat(64) },
      activationWallMs: 1_800_000_000_000,
    };
    const keyPairs: number[] = [];
    const decisionSigns: number[] = [];
    const decisionChecks: number[] = [];
    for (let i = 0; i < 520; i++) {
      let t = process.hrtime.bigint();
      const pair = newDecisionKeyPair();
      const keyMs = elapsedMs(t);
      t = process.hrtime.bigint();
      const signature = signDecision(pair, txn, "committed");
      const signMs = elapsedMs(t);
      t = process.hrtime.bigint();
      if (checkDecision(txn, pair.publicKey, "committed", signature) !== "valid")
        throw new Error("the bench's own decision signature does not verify");
      const checkMs = elapsedMs(t);
      if (i < 20) continue;
      keyPairs.push(keyMs * 1000);
      decisionSigns.push(signMs * 1000);
      decisionChecks.push(checkMs * 1000);
    }
    results.push(
      summarize("sign a plan's statement (Ed25519)", "µs", signs),
      summarize("a gateway's signature check of one PREPARE (keys dir read + Ed25519 verify)", "µs", checks),
      summarize("a coordinator run's decision key pair (Ed25519)", "µs", keyPairs),
      summarize("a coordinator run's signature of its decision", "µs", decisionSigns),
      summarize("a participant's check of a decision's signature (new key each time)", "µs", decisionChecks),
    );
  } finally {
    await broker.close();
    rmSync(keys, { recursive: true, force: true });
    rmSync(trusted, { recursive: true, force: true });
  }
  return results;
}
