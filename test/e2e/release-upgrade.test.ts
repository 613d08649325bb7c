import { spawnSync } from "node:child_process";
import { chownSync, existsSync, readdirSync, readlinkSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { readReleaseState } from "../../gateway/release/release-state.js";
import { GatewayStore, inspectStoredLatch } from "../../gateway/store/store.js";
import {
  type FakeRoot,
  debInstallEnv,
  dpkgDatabase,
  fakeDeb,
  fakeRoot,
  greenwave,
  HERE_ARCH,
  makeTarball,
  OTHER_ARCH,
  SCHEMA,
  writeRelease,
} from "../support/fake-release.js";
import { buildOnce } from "./cli.js";

/**
 * Health-gated activation and rollback (docs/upgrades.md), end to end: the compiled command, run as
 * a process on a root in a temporary directory, with the direct service manager starting each
 * release's bin/greenwave under a NOTIFY_SOCKET it owns (the protocol systemd speaks). The releases
 * are scripts (test/support/fake-release.ts) that report READY or never do, migrate the store, latch
 * a fault with the store's own code, or crash.
 */

const roots: string[] = [];
afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

function setUp(): FakeRoot {
  const fake = fakeRoot();
  roots.push(fake.root);
  // A store with a history: a plan, a plan in force, an audit event.
  const store = GatewayStore.open(fake.store);
  store.recordPlan("off-peak", 1, { cycleSeconds: 90 }, "config", 1_000);
  store.setPlanInForce({ planId: "off-peak", version: 1, sinceWallMs: 1_000, activationWallMs: null });
  store.appendEvent({ atWallMs: 1_000, type: "gateway-started", actor: null, detail: {} }, null);
  store.close();
  // The gateway's user owns its store (activation runs as root): see ownedByGateway.
  if (AS_ROOT)
    for (const path of [fake.store, ...readdirSync(fake.store).map((f) => join(fake.store, f))])
      chownSync(path, GATEWAY_UID, GATEWAY_UID);
  return fake;
}

const AS_ROOT = process.getuid?.() === 0;
const GATEWAY_UID = 4321;

/** Every file in the store directory is still the gateway user's (when the test runs as root, as dpkg does). */
function expectOwnedByGateway(fake: FakeRoot): void {
  if (!AS_ROOT) return;
  const owners = readdirSync(fake.store).map((f) => [f, statSync(join(fake.store, f)).uid]);
  expect(owners).toEqual(owners.map(([f]) => [f, GATEWAY_UID]));
}

/** Short bounds: each trial takes a second or two. */
const TRIAL = ["--service-manager", "direct", "--ready-within", "5", "--settle", "0.5"];

function activate(fake: FakeRoot, version: string, ...flags: string[]) {
  return greenwave(["release", "activate", version, "--root", fake.root, ...TRIAL, ...flags]);
}

const link = (fake: FakeRoot, name: string) => {
  try {
    return readlinkSync(join(fake.root, "opt/greenwave", name));
  } catch {
    return null;
  }
};

/** Every table's schema and rows, except the audit trail and the latch (compared on their own). */
function contents(dbFile: string): { version: number; schema: unknown[]; rows: Record<string, unknown[]> } {
  const db = new Database(dbFile, { readonly: true });
  try {
    const schema = db.prepare("SELECT type, name, sql FROM sqlite_master ORDER BY name").all();
    const rows: Record<string, unknown[]> = {};
    for (const { name } of db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
      .all() as { name: string }[])
      if (!["events", "latch", "meta"].includes(name))
        rows[name] = db.prepare(`SELECT * FROM "${name}" ORDER BY rowid`).all();
    return { version: db.pragma("user_version", { simple: true }) as number, schema, rows };
  } finally {
    db.close();
  }
}

function events(
  dbFile: string,
): { seq: number; type: string; actor: string | null; detail: Record<string, unknown> }[] {
  const db = new Database(dbFile, { readonly: true });
  try {
    return (
      db.prepare("SELECT seq, type, actor, detail FROM events ORDER BY seq").all() as {
        seq: number;
        type: string;
        actor: string | null;
        detail: string;
      }[]
    ).map((e) => ({ ...e, detail: JSON.parse(e.detail) as Record<string, unknown> }));
  } finally {
    db.close();
  }
}

const backupsOf = (fake: FakeRoot) =>
  existsSync(join(fake.data, "backups")) ? readdirSync(join(fake.data, "backups")).sort() : [];

describe("greenwave release activate: the health gate and its rollback", () => {
  beforeAll(buildOnce, 180_000);

  it("a release that never becomes READY is rolled back, with the store as it was before its migration and the fault it latched still latched", async () => {
    const fake = setUp();
    fake.release({ version: "1.0.0", schemaVersion: SCHEMA, behaviour: { ready: true } });
    fake.release({
      version: "1.1.0",
      schemaVersion: SCHEMA + 1,
      behaviour: { ready: false, migrateTo: SCHEMA + 1, latch: "both" },
    });
    const first = await activate(fake, "1.0.0");
    expect(first.code, first.out + first.err).toBe(0);
    expect(link(fake, "current")).toBe("releases/1.0.0");
    const before = contents(join(fake.store, "gateway.db"));
    const eventsBefore = events(join(fake.store, "gateway.db"));

    const failed = await activate(fake, "1.1.0", "--ready-within", "2");
    process.stdout.write(`never READY: rolled back in ${Math.round(failed.ms)} ms\n`);
    expect(failed.code, failed.out + failed.err).toBe(1);
    expect(failed.err).toContain(
      "release 1.1.0 was ROLLED BACK to 1.0.0: it did not report READY within 2 s",
    );
    expect(failed.err).toContain('its last status: "start-up flash: waiting for module io1"');
    expect(failed.err).toContain("LATCHED FAULT from the attempt, carried over: red-fail");
    expect(failed.err).toContain("1.0.0 is running again (READY after");
    expect(failed.err).toMatch(/What to do: find why 1\.1\.0 failed .* install 1\.1\.0 again/);

    // current is the previous release again; previous is what it was.
    expect(link(fake, "current")).toBe("releases/1.0.0");
    expect(link(fake, "previous")).toBeNull();

    // The store: schema and every row as before the migration (the migrated copy is kept aside).
    const db = join(fake.store, "gateway.db");
    expect(contents(db)).toEqual(before);
    expect(contents(db).version).toBe(SCHEMA);
    const [backup] = backupsOf(fake);
    expect(backup).toMatch(/^pre-1\.1\.0-\d{8}T\d{9}Z$/);
    const kept = join(fake.data, "backups", backup as string, "failed-1.1.0/elm/gateway.db");
    expect(contents(kept).version).toBe(SCHEMA + 1);

    // The fault latched while 1.1.0 ran: latched, in both copies, as a start would load it.
    const inspection = inspectStoredLatch(fake.store);
    expect(inspection.latch?.kind).toBe("red-fail");
    expect(inspection.latch?.message).toBe("red lamp of M failed (1.1.0)");
    expect(inspection.record.status === "ok" && inspection.record.state.latch?.kind).toBe("red-fail");
    expect(inspection.database.status === "ok" && inspection.database.latch?.kind).toBe("red-fail");
    expect(inspection.findings).toEqual([]);

    // The audit trail: what was there, the attempt's own event (same seq), then the rollback.
    const after = events(db);
    expect(after.slice(0, eventsBefore.length)).toEqual(eventsBefore);
    const added = after.slice(eventsBefore.length);
    expect(added.map((e) => e.type)).toEqual(["fault-latched", "release-rolled-back"]);
    expect(added[1]?.detail).toMatchObject({ from: "1.0.0", to: "1.1.0", trigger: "health gate" });
    expect(String(added[1]?.detail.why)).toContain("did not report READY within 2 s");
    expect(added[1]?.actor).toBeTruthy();

    // release-state.json, as the status reads it.
    const state = readReleaseState(fake.root);
    expect(state.status).toBe("ok");
    if (state.status !== "ok") return;
    expect(state.state.active).toBe("1.0.0");
    expect(state.state.history.map((h) => [h.from, h.to, h.outcome])).toEqual([
      [null, "1.0.0", "activated"],
      ["1.0.0", "1.1.0", "rolled-back"],
    ]);
    expect(state.state.history[1]?.why).toContain("did not report READY within 2 s");

    expectOwnedByGateway(fake);

    // And the previous release's own code opens the restored store, latched.
    const reopened = GatewayStore.open(fake.store);
    try {
      expect(reopened.schemaVersion).toBe(SCHEMA);
      expect(reopened.load()?.kind).toBe("red-fail");
      expect(reopened.latchFindings).toEqual([]);
    } finally {
      reopened.close();
    }
  }, 60_000);

  it("a release that crashes 3 times is rolled back at the third crash; a latch only in its database is carried into both copies", async () => {
    const fake = setUp();
    fake.release({ version: "1.0.0", schemaVersion: SCHEMA, behaviour: { ready: true } });
    fake.release({
      version: "1.2.0",
      schemaVersion: SCHEMA + 1,
      behaviour: { ready: false, migrateTo: SCHEMA + 1, latch: "database", crash: true },
    });
    const first = await activate(fake, "1.0.0");
    expect(first.code, first.out + first.err).toBe(0);
    const before = contents(join(fake.store, "gateway.db"));

    const failed = await activate(fake, "1.2.0", "--ready-within", "30");
    process.stdout.write(`crash loop: rolled back in ${Math.round(failed.ms)} ms\n`);
    expect(failed.code, failed.out + failed.err).toBe(1);
    expect(failed.err).toMatch(/ROLLED BACK to 1\.0\.0: it crashed 3 times within [\d.]+ s of its start/);
    expect(failed.err).toContain("the last: exit status 1");
    // Far sooner than the 30 s READY bound: the crashes decided.
    expect(failed.ms).toBeLessThan(15_000);

    expect(link(fake, "current")).toBe("releases/1.0.0");
    expect(contents(join(fake.store, "gateway.db"))).toEqual(before);
    const inspection = inspectStoredLatch(fake.store);
    expect(inspection.latch?.kind).toBe("red-fail");
    expect(inspection.record.status === "ok" && inspection.record.state.latch?.kind).toBe("red-fail");
    expect(inspection.database.status === "ok" && inspection.database.latch?.kind).toBe("red-fail");
  }, 60_000);

  it("a good upgrade from a tarball switches, keeps the previous release and backs the store up before its migration; a downgrade past it is refused and names that backup", async () => {
    const fake = setUp();
    fake.release({ version: "1.0.0", schemaVersion: SCHEMA, behaviour: { ready: true } });
    const first = await activate(fake, "1.0.0");
    expect(first.code, first.out + first.err).toBe(0);
    writeRelease(join(fake.root, "build/greenwave-2.0.0"), fake.root, {
      version: "2.0.0",
      schemaVersion: SCHEMA + 1,
      behaviour: { ready: true, migrateTo: SCHEMA + 1 },
    });
    const tarball = join(fake.root, "build/greenwave-2.0.0.tar.gz");
    makeTarball(tarball, join(fake.root, "build"), ["greenwave-2.0.0"]);

    const upgraded = await greenwave(["upgrade", tarball, "--root", fake.root, ...TRIAL]);
    process.stdout.write(`good upgrade (tarball, settle 0.5 s): ${Math.round(upgraded.ms)} ms\n`);
    expect(upgraded.code, upgraded.out + upgraded.err).toBe(0);
    expect(upgraded.out).toContain(`will migrate store elm ${SCHEMA} → ${SCHEMA + 1}: backed up to`);
    expect(upgraded.out).toMatch(
      /2\.0\.0 is active \(READY after [\d.]+ s, no crash in the 0\.5 s settle window/,
    );
    expect(link(fake, "current")).toBe("releases/2.0.0");
    expect(link(fake, "previous")).toBe("releases/1.0.0");
    expect(existsSync(join(fake.root, "opt/greenwave/releases/1.0.0/bin/greenwave"))).toBe(true);
    expect(contents(join(fake.store, "gateway.db")).version).toBe(SCHEMA + 1);
    const backups = backupsOf(fake);
    expect(backups).toHaveLength(1);
    expect(contents(join(fake.data, "backups", backups[0] as string, "elm/gateway.db")).version).toBe(SCHEMA);
    const last = events(join(fake.store, "gateway.db")).at(-1);
    expect(last).toMatchObject({ type: "release-activated", detail: { from: "1.0.0", to: "2.0.0" } });
    const state = readReleaseState(fake.root);
    expect(state.status === "ok" && state.state).toMatchObject({ active: "2.0.0", previous: "1.0.0" });
    expectOwnedByGateway(fake);

    // Back to 1.0.0 (schema SCHEMA) would meet a store it cannot open.
    const downgrade = await activate(fake, "1.0.0");
    expect(downgrade.code).toBe(1);
    expect(downgrade.err).toContain(`release 1.0.0 knows store schema ${SCHEMA}, but`);
    expect(downgrade.err).toContain(
      `A backup from before that migration exists: ${join(fake.data, "backups", backups[0] as string)}`,
    );
    expect(link(fake, "current")).toBe("releases/2.0.0");
    const refused = readReleaseState(fake.root);
    expect(refused.status === "ok" && refused.state.history.at(-1)?.outcome).toBe("refused");
  }, 60_000);

  it("keeps at most 3 store backups and 3 releases", async () => {
    const fake = setUp();
    fake.release({ version: "1.0.0", schemaVersion: SCHEMA, behaviour: { ready: true } });
    const first = await activate(fake, "1.0.0");
    expect(first.code, first.out + first.err).toBe(0);
    for (let i = 1; i <= 4; i++) {
      fake.release({
        version: `1.0.${i}`,
        schemaVersion: SCHEMA + i,
        behaviour: { ready: true, migrateTo: SCHEMA + i },
      });
      const run = await activate(fake, `1.0.${i}`, "--settle", "0");
      expect(run.code, run.out + run.err).toBe(0);
    }
    const backups = backupsOf(fake);
    expect(backups.map((b) => b.replace(/-\d{8}T\d{9}Z$/, ""))).toEqual([
      "pre-1.0.2",
      "pre-1.0.3",
      "pre-1.0.4",
    ]);
    expect(readdirSync(join(fake.root, "opt/greenwave/releases")).sort()).toEqual([
      "1.0.2",
      "1.0.3",
      "1.0.4",
    ]);
    expect(link(fake, "current")).toBe("releases/1.0.4");
    expect(link(fake, "previous")).toBe("releases/1.0.3");
  }, 90_000);

  it("refuses a tarball with ../ entries, and writes nothing", async () => {
    const fake = setUp();
    writeRelease(join(fake.root, "build/greenwave-3.0.0"), fake.root, {
      version: "3.0.0",
      schemaVersion: SCHEMA,
      behaviour: { ready: true },
    });
    const tarball = join(fake.root, "build/evil.tar.gz");
    makeTarball(tarball, join(fake.root, "build"), [
      "greenwave-3.0.0",
      "greenwave-3.0.0/../greenwave-3.0.0/release.json",
    ]);
    const run = await greenwave(["upgrade", tarball, "--root", fake.root, ...TRIAL]);
    expect(run.code).toBe(1);
    expect(run.err).toContain(
      'evil.tar.gz: refused: the entry "greenwave-3.0.0/../greenwave-3.0.0/release.json" has a ".." component',
    );
    expect(readdirSync(join(fake.root, "opt/greenwave/releases"))).toEqual([]);
    expect(link(fake, "current")).toBeNull();
  });

  it("refuses a release built for another architecture, and switches nothing", async () => {
    const fake = setUp();
    fake.release({ version: "4.0.0", schemaVersion: SCHEMA, arch: OTHER_ARCH, behaviour: { ready: true } });
    const run = await activate(fake, "4.0.0");
    expect(run.code).toBe(1);
    expect(run.err).toContain(`release 4.0.0 is built for ${OTHER_ARCH}, but this machine is`);
    expect(link(fake, "current")).toBeNull();
    const state = readReleaseState(fake.root);
    expect(state.status === "ok" && state.state.history.at(-1)).toMatchObject({
      to: "4.0.0",
      outcome: "refused",
    });
  });

  it("without a running systemd (here: a root that is not this machine's), only switches the links and says so", async () => {
    const fake = setUp();
    fake.release({ version: "1.0.0", schemaVersion: SCHEMA, behaviour: { ready: true } });
    const run = await greenwave(["release", "activate", "1.0.0", "--root", fake.root]);
    expect(run.code, run.out + run.err).toBe(0);
    expect(run.out).toContain("no health gate: --root");
    expect(run.out).toContain("1.0.0 is active (switched only:");
    expect(link(fake, "current")).toBe("releases/1.0.0");
  });

  it("checks a .deb before dpkg runs: another architecture, or a store schema it cannot open, is refused", async () => {
    const fake = setUp();
    const deb = (arch: string, schemaVersion: number) =>
      fakeDeb(fake.root, fake.root, { version: "9.0.0", schemaVersion, arch, behaviour: { ready: true } });
    const other = await greenwave(["upgrade", deb(OTHER_ARCH, SCHEMA), "--root", fake.root]);
    expect(other.code).toBe(1);
    expect(other.err).toMatch(
      new RegExp(
        `is built for ${OTHER_ARCH}, but this machine is \\S+ \\(${HERE_ARCH}\\): install the ${HERE_ARCH} package`,
      ),
    );
    const older = await greenwave(["upgrade", deb(HERE_ARCH, SCHEMA - 1), "--root", fake.root]);
    expect(older.code).toBe(1);
    expect(older.err).toContain(
      `release 9.0.0 knows store schema ${SCHEMA - 1}, but ${join(fake.store, "gateway.db")} has schema ${SCHEMA}`,
    );
    expect(older.err).toContain("No backup from before that migration is left");
    expect(older.out).not.toContain("dpkg --root");
  });

  it("installs a .deb with dpkg, whose postinst activates it: a good one is active, a bad one is rolled back and left half-configured (iF)", async () => {
    const fake = setUp();
    dpkgDatabase(fake.root);
    fake.release({ version: "1.0.0", schemaVersion: SCHEMA, behaviour: { ready: true } });
    expect((await activate(fake, "1.0.0")).code).toBe(0);
    const gate = ["--service-manager", "direct", "--ready-within", "2", "--settle", "0.5"];
    const dpkgList = () =>
      spawnSync("dpkg", [`--root=${fake.root}`, "-l", "greenwave"], { encoding: "utf8" })
        .stdout.split("\n")
        .at(-2);

    const bad = fakeDeb(
      fake.root,
      fake.root,
      {
        version: "1.1.0",
        schemaVersion: SCHEMA + 1,
        behaviour: { ready: false, migrateTo: SCHEMA + 1, latch: "both" },
      },
      gate,
    );
    const failed = await greenwave(["upgrade", bad, "--root", fake.root], 60_000, debInstallEnv);
    expect(failed.code, failed.out + failed.err).toBe(1);
    expect(failed.err).toContain(
      "dpkg could not configure 1.1.0: its postinst ROLLED IT BACK to 1.0.0: it did not report READY within 2 s",
    );
    expect(failed.err).toContain('`dpkg -l greenwave` shows it "iF" (half-configured)');
    expect(dpkgList()).toMatch(/^iF\s+greenwave\s+1\.1\.0\s/);
    expect(link(fake, "current")).toBe("releases/1.0.0");
    expect(contents(join(fake.store, "gateway.db")).version).toBe(SCHEMA);
    expect(inspectStoredLatch(fake.store).latch?.kind).toBe("red-fail");

    const good = fakeDeb(
      fake.root,
      fake.root,
      { version: "1.2.0", schemaVersion: SCHEMA + 1, behaviour: { ready: true, migrateTo: SCHEMA + 1 } },
      gate,
    );
    const upgraded = await greenwave(["upgrade", good, "--root", fake.root], 60_000, debInstallEnv);
    expect(upgraded.code, upgraded.out + upgraded.err).toBe(0);
    expect(upgraded.out).toMatch(/dpkg installed 1\.2\.0; activated: READY after/);
    expect(dpkgList()).toMatch(/^ii\s+greenwave\s+1\.2\.0\s/);
    expect(link(fake, "current")).toBe("releases/1.2.0");
    expect(link(fake, "previous")).toBe("releases/1.0.0");
  }, 60_000);
});
