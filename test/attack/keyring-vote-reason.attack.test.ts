import { describe, expect, it } from "vitest";
import { corridorBodySchema } from "../../gateway/protocol/corridor-messages.js";
import { keyringRefusal } from "../../gateway/core/corridor/keyring.js";
import { compileKeyring } from "../../gateway/protocol/keyring.js";
import { generateKeyPairSync, randomBytes } from "node:crypto";

/**
 * Unit-level attacks on the keyring's verdict text (core/corridor/keyring.ts): what a participant says
 * when it votes no must fit the vote the corridor protocol carries (corridor-messages.ts: a vote's
 * reason is at most 1000 characters), or the vote itself is dropped by the coordinator as invalid.
 */

const pem = generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }) as string;

describe("the keyring refusal as a vote", () => {
  // Found by the attack review and mended in the same stop.
  it("a no vote over 16 untrusted signatures with long signer names still fits a vote message", () => {
    const compiled = compileKeyring(
      {
        kind: "keyring",
        corridor: "test-corridor",
        version: 1,
        keys: [{ name: "bob", publicKey: pem }],
      },
      "test-corridor",
    );
    if (!compiled.ok) throw new Error("fixture keyring invalid");
    const signatures = Array.from({ length: 16 }, (_, i) => ({
      signer: `m${"a".repeat(59)}${String(i).padStart(4, "0")}`,
      key: randomBytes(32).toString("hex"),
      value: randomBytes(64).toString("base64"),
    }));
    const reason = keyringRefusal(
      {
        kind: "keys",
        dir: "/keys",
        keys: [{ name: "alice", fingerprint: "a".repeat(64), revoked: false, source: "directory" }],
        threshold: 1,
        keyring: null,
      },
      compiled.value,
      2,
      null,
      signatures,
      () => false,
    );
    expect(reason).toMatch(/has 0/);
    const vote = corridorBodySchema.safeParse({ type: "vote", txnId: "t1", yes: false, reason });
    expect(vote.success, `reason of ${reason?.length} characters`).toBe(true);
  });
});
