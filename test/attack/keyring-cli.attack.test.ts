import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { GatewayStore, STORE_FILE } from "../../gateway/store/store.js";
import { writeCorridorFixture } from "../../simulators/fixtures/corridor-fixture.js";
import { buildOnce, CLI } from "../e2e/cli.js";
import { cleanupProcesses, cli, dirs } from "../e2e/processes.js";
import { commitKeyring, keyringYaml, mangleStoredKeyring } from "../support/keyring-files.js";

/**
 * `greenwave keys sign`, `keys push` and `keys trust` (and a gateway's start) under hostile input:
 * missing files, a .sig that is not JSON, a signature list of 17, a keyring YAML alias bomb, a store
 * whose keyring row is damaged. Every answer: exit 1 or 2 with a sentence, never a stack trace, never
 * the internal-error exit 70.
 */

beforeAll(() => buildOnce(), 180_000);
afterEach(() => cleanupProcesses());

const STACK = /\n\s+at |internal error|Unhandled 'error'/;

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-attack-keyring-cli-"));
  dirs.push(dir);
  return dir;
}

/** Exit 1 or 2, one line on stderr matching `message`, no stack. */
function refusedCleanly(run: ReturnType<typeof cli>, message: RegExp): void {
  expect([1, 2], run.stdout + run.stderr).toContain(run.status);
  expect(run.stderr).not.toMatch(STACK);
  expect(run.stderr.trim().split("\n")).toHaveLength(1);
  expect(run.stderr).toMatch(message);
}

function setup() {
  const fixture = writeCorridorFixture(2);
  dirs.push(fixture.dir);
  const own = tempDir();
  for (const name of ["alice", "bob"])
    expect(cli(["keys", "generate", "--name", name, "--out", own]).status).toBe(0);
  const keyring = join(fixture.dir, "keyring.yaml");
  writeFileSync(
    keyring,
    keyringYaml({
      corridor: "test-corridor",
      version: 1,
      keys: [{ name: "bob", publicKeyPem: readFileSync(join(own, "bob.pub"), "utf8") }],
    }),
  );
  const push = (...more: string[]) =>
    cli([
      ...["keys", "push", "--keyring", keyring, "--corridor", fixture.corridor],
      ...["--broker", "mqtt://127.0.0.1:1", "--as", "alice", "--data-dir", tempDir(), ...more],
    ]);
  return { fixture, own, keyring, push };
}

describe("greenwave keys sign / push under hostile input", () => {
  it("missing keyring, missing key, a keyring YAML alias bomb: one line, exit 1 or 2", () => {
    const { own, keyring, fixture } = setup();
    refusedCleanly(
      cli(["keys", "sign", join(fixture.dir, "absent.yaml"), "--key", join(own, "alice.key")]),
      /absent\.yaml/,
    );
    refusedCleanly(cli(["keys", "sign", keyring, "--key", join(own, "absent.key")]), /absent\.key/);
    // A public key where the private key goes.
    refusedCleanly(cli(["keys", "sign", keyring, "--key", join(own, "alice.pub")]), /alice\.pub/);
    const bomb = join(fixture.dir, "bomb.yaml");
    const levels = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 10; i++) {
      const prev = String.fromCharCode(96 + i);
      const name = String.fromCharCode(97 + i);
      levels.push(`${name}: &${name} [${Array(10).fill(`*${prev}`).join(",")}]`);
    }
    writeFileSync(
      bomb,
      `kind: keyring\ncorridor: test-corridor\nversion: 1\n${levels.join("\n")}\nkeys: *j\n`,
    );
    const started = performance.now();
    refusedCleanly(cli(["keys", "sign", bomb, "--key", join(own, "alice.key")]), /alias/i);
    expect(performance.now() - started).toBeLessThan(15_000);
    // A __proto__ key and a merge key in the YAML.
    const proto = join(fixture.dir, "proto.yaml");
    writeFileSync(proto, `${readFileSync(keyring, "utf8")}__proto__: { threshold: 0 }\n`);
    refusedCleanly(cli(["keys", "sign", proto, "--key", join(own, "alice.key")]), /__proto__/);
  }, 60_000);

  it("a .sig that is not JSON, a list of 17, a list already holding 16: refused before any broker is asked", () => {
    const { own, keyring, push, fixture } = setup();
    writeFileSync(`${keyring}.sig`, "{ this is not json");
    refusedCleanly(push(), /not a signature file \(not JSON\)/);
    refusedCleanly(cli(["keys", "sign", keyring, "--key", join(own, "alice.key")]), /not JSON/);

    // A genuine signature, then the same entry 17 times.
    writeFileSync(`${keyring}.sig`, "");
    const sigFile = join(fixture.dir, "one.sig");
    expect(cli(["keys", "sign", keyring, "--key", join(own, "alice.key"), "--out", sigFile]).status).toBe(0);
    const one = JSON.parse(readFileSync(sigFile, "utf8")) as { signatures: unknown[] };
    const seventeen = { kind: "greenwave-signatures", v: 1, signatures: Array(17).fill(one.signatures[0]) };
    writeFileSync(`${keyring}.sig`, JSON.stringify(seventeen));
    refusedCleanly(push(), /is not a signature list: signatures/);
    // 16 distinct entries (other key fingerprints) already: signing adds no 17th.
    const sixteen = {
      kind: "greenwave-signatures",
      v: 1,
      signatures: Array.from({ length: 16 }, (_, i) => ({
        ...(one.signatures[0] as object),
        key: i.toString(16).padStart(64, "f"),
      })),
    };
    writeFileSync(`${keyring}.sig`, JSON.stringify(sixteen));
    refusedCleanly(
      cli(["keys", "sign", keyring, "--key", join(own, "bob.key")]),
      /holds 16 signatures already/,
    );
    // A missing --corridor and a missing --signatures file.
    refusedCleanly(
      cli([
        ...["keys", "push", "--keyring", keyring, "--corridor", join(fixture.dir, "absent.yaml")],
        ...["--broker", "mqtt://127.0.0.1:1", "--as", "alice", "--data-dir", tempDir()],
      ]),
      /--corridor .*no such file/,
    );
    refusedCleanly(push("--signatures", join(fixture.dir, "absent.sig")), /no signatures for keyring v1/);
  }, 60_000);
});

/** A gateway store for intersection x1 holding a committed keyring whose row is then `mangle`d. */
function damagedStore(mangle: string): string {
  const dataDir = tempDir();
  mkdirSync(join(dataDir, "x1"));
  const store = GatewayStore.open(join(dataDir, "x1"));
  commitKeyring(store, "test-corridor");
  store.close();
  mangleStoredKeyring(join(dataDir, "x1", STORE_FILE), mangle);
  return dataDir;
}

describe("greenwave keys trust and a gateway's start on a damaged keyring row", () => {
  it("keys trust: a missing data directory, a garbled row, a truncated row: one line, never a stack", () => {
    refusedCleanly(
      cli(["keys", "trust", "--intersection", "x1", "--data-dir", join(tempDir(), "absent")]),
      /x1|absent/,
    );
    const garbled = damagedStore(`replace(body, '"bob"', '"mallory"')`);
    const run = cli(["keys", "trust", "--intersection", "x1", "--data-dir", garbled]);
    expect(run.stderr).not.toMatch(STACK);
    expect(run.stdout).toMatch(
      /the stored keyring's digest does not match its content: push the keyring again/,
    );
    // A gateway that trusts nothing: said on one line, exit 1.
    expect(run.status).toBe(1);
    const truncated = cli([
      "keys",
      "trust",
      "--intersection",
      "x1",
      "--data-dir",
      damagedStore("substr(body, 1, 40)"),
    ]);
    expect(truncated.status).toBe(1);
    expect(truncated.stderr).not.toMatch(STACK);
    expect(truncated.stdout).toMatch(
      /the stored keyring is damaged \(not JSON .*truncated\?\)\): push the keyring again/,
    );
  }, 60_000);

  // Found by the attack review and mended in the same stop.
  it("a gateway whose keyring row is truncated starts, trusts nothing and says so", () => {
    const { fixture } = setup();
    const dataDir = damagedStore("substr(body, 1, 40)");
    const run = spawnSync(
      "node",
      [CLI, "gateway", "--config", join(fixture.dir, "x1.yaml"), "--data-dir", dataDir, "--tick-ms", "100"],
      { encoding: "utf8", timeout: 8_000, killSignal: "SIGKILL" },
    );
    const output = run.stdout + run.stderr;
    expect(output).not.toMatch(/internal error/);
    expect(run.status, output.slice(0, 2000)).not.toBe(70);
    expect(output).toMatch(/push the keyring again/);
  }, 60_000);
});
