import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { ConfigError } from "../config/errors.js";
import { identifier } from "../config/schema.js";
import { validate } from "../config/validate.js";
import { readYamlFile } from "../config/yaml-file.js";
import type { Principal } from "./acl.js";

const passwordHash = z
  .string()
  .regex(
    /^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/,
    "must be a hash made by `greenwave broker hash-password`",
  );

export const brokerUsersFileSchema = z.strictObject({
  kind: z.literal("broker-users"),
  users: z
    .array(
      z.discriminatedUnion("role", [
        z.strictObject({
          username: z.string().min(1).max(64),
          passwordHash: passwordHash.optional(),
          role: z.literal("gateway"),
          corridor: identifier,
          intersection: identifier,
        }),
        z.strictObject({
          username: z.string().min(1).max(64),
          passwordHash: passwordHash.optional(),
          role: z.literal("operator"),
        }),
      ]),
    )
    .min(1)
    .max(10_000),
});

export interface BrokerUser {
  readonly principal: Exclude<Principal, { role: "open" }>;
  /**
   * Null: a user who logs in only with a client certificate whose CN is its username (docs/mtls.md);
   * a password login as it is refused like one with a wrong password.
   */
  readonly passwordHash: string | null;
}

export function loadBrokerUsers(file: string): Map<string, BrokerUser> {
  const yaml = readYamlFile(file);
  const parsed = validate(brokerUsersFileSchema, yaml);
  const users = new Map<string, BrokerUser>();
  for (const [index, user] of parsed.users.entries()) {
    if (users.has(user.username))
      throw new ConfigError(
        yaml.locate([{ path: ["users", index, "username"], message: `"${user.username}" is listed twice` }]),
      );
    const principal: BrokerUser["principal"] =
      user.role === "gateway"
        ? {
            role: "gateway",
            username: user.username,
            corridor: user.corridor,
            intersection: user.intersection,
          }
        : { role: "operator", username: user.username };
    users.set(user.username, { principal, passwordHash: user.passwordHash ?? null });
  }
  return users;
}

const SCRYPT = { N: 16384, r: 8, p: 1, keyLength: 32 };

function scryptAsync(
  password: string | Buffer,
  salt: Buffer,
  N: number,
  r: number,
  p: number,
  keyLength: number,
) {
  return new Promise<Buffer>((resolve, reject) =>
    scrypt(password, salt, keyLength, { N, r, p, maxmem: 64 * 1024 * 1024 }, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, SCRYPT.N, SCRYPT.r, SCRYPT.p, SCRYPT.keyLength);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString("base64")}$${key.toString("base64")}`;
}

export async function verifyPassword(password: Buffer, hash: string): Promise<boolean> {
  const [scheme, n, r, p, salt, key] = hash.split("$");
  if (scheme !== "scrypt" || !salt || !key) return false;
  const expected = Buffer.from(key, "base64");
  const actual = await scryptAsync(
    password,
    Buffer.from(salt, "base64"),
    Number(n),
    Number(r),
    Number(p),
    expected.length,
  );
  return timingSafeEqual(actual, expected);
}
