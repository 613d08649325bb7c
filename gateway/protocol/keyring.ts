/**
 * The corridor's keyring as it travels in a PREPARE (core/corridor/keyring.ts): compiled by each
 * gateway from what it received, with the same code `config check` and `keys push` run on the file
 * (config/keyring.ts). Here for the shell, which reads the wire's terms and not the config layer.
 */
export { compileKeyring, ed25519PublicKey, publicKeyFingerprint } from "../config/keyring.js";
