import { z } from "zod";
import {
  MAX_KEYRING_KEYS,
  MAX_KEYRING_REVOCATIONS,
  MAX_KEYRING_THRESHOLD,
} from "../core/corridor/keyring.js";
import { identifier } from "./identifier.js";

/**
 * The shape of a keyring file (`kind: keyring`, docs/threat-model.md#rotation-by-a-committed-change):
 * the corridor's trusted signing keys and revocations, pushed with `greenwave keys push` through the
 * lease and two-phase commit (core/corridor/keyring.ts has its rules). The keys themselves (PEM, Ed25519)
 * are parsed and fingerprinted by protocol/keyring.ts, which every gateway runs on what it receives.
 */

/** A key's name, as `greenwave keys generate --name` makes it. */
const keyName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "must be 1-64 letters, digits, '.', '_' or '-'");

const fingerprint = z
  .string()
  .regex(/^[0-9a-f]{64}$/, "must be a key fingerprint: 64 lower-case hex characters (greenwave keys list)");

export const keyringFileSchema = z.strictObject({
  kind: z.literal("keyring"),
  corridor: identifier,
  version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  /** Distinct trusted keys the next keyring change must be signed by. */
  threshold: z.number().int().min(1).max(MAX_KEYRING_THRESHOLD).default(1),
  description: z.string().max(1000).optional(),
  keys: z
    .array(
      z.strictObject({
        name: keyName,
        /** SPKI PEM, as NAME.pub holds it. */
        publicKey: z.string().min(1).max(1000),
      }),
    )
    .max(MAX_KEYRING_KEYS),
  revoked: z
    .array(z.strictObject({ fingerprint, name: keyName.optional() }))
    .max(MAX_KEYRING_REVOCATIONS)
    .default([]),
});

export type KeyringFile = z.infer<typeof keyringFileSchema>;
