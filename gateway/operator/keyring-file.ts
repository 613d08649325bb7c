import { resolve } from "node:path";
import { keyringFileSchema, type KeyringFile } from "../config/keyring-schema.js";
import { ConfigError } from "../config/errors.js";
import { validate } from "../config/validate.js";
import { readYamlFile, type YamlFile } from "../config/yaml-file.js";
import type { CompiledKeyring } from "../core/corridor/keyring.js";
import { compileKeyring } from "../config/keyring.js";

/** A keyring file (`kind: keyring`) read for `greenwave keys sign` and `keys push`. */
export interface LoadedKeyring {
  readonly file: string;
  readonly yaml: YamlFile;
  readonly raw: KeyringFile;
  /** As every gateway will compile it: fingerprints and digest computed from the keys themselves. */
  readonly keyring: CompiledKeyring;
}

/**
 * Reads and checks a keyring file: its shape, then its keys (PEM, Ed25519, none twice, none both trusted
 * and revoked) and its corridor (`corridorId`, when pushing to one), every problem at its line.
 */
export function loadKeyring(file: string, corridorId?: string): LoadedKeyring {
  const yaml = readYamlFile(resolve(file));
  const raw = validate(keyringFileSchema, yaml);
  const compiled = compileKeyring(raw, corridorId ?? raw.corridor);
  if (!compiled.ok) throw new ConfigError(yaml.locate(compiled.issues));
  return { file: yaml.file, yaml, raw, keyring: compiled.value };
}
