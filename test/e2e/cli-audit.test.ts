import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { AUDIT_SCAN_ROWS } from "../../gateway/core/audit-page.js";
import { GatewayStore } from "../../gateway/store/store.js";
import { buildOnce, CLI } from "./cli.js";

/** 10,000 events as JSON are a few MB: more than spawnSync's default 1 MB buffer. */
const cli = (args: string[]) =>
  spawnSync("node", [CLI, ...args], {
    encoding: "utf8",
    timeout: 20_000,
    killSignal: "SIGKILL",
    maxBuffer: 64 * 1024 * 1024,
  });

/**
 * `greenwave audit` at the cabinet, run as a user runs it, on a store written by a real GatewayStore
 * that stays open (as a running gateway holds it) while the command reads it.
 */
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

const T0 = Date.parse("2026-11-30T09:12:03.120Z");

function storeWith(events: { atWallMs: number; type: string; actor: string | null; detail: object }[]) {
  const dataDir = mkdtempSync(join(tmpdir(), "greenwave-audit-"));
  const store = GatewayStore.open(join(dataDir, "elm"));
  store.atomically(() => {
    for (const event of events) store.appendEvent({ ...event, detail: { ...event.detail } }, null);
  });
  cleanups.push(() => {
    store.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { dataDir, store };
}

const audit = (dataDir: string, ...args: string[]) =>
  cli(["audit", "--intersection", "elm", "--data-dir", dataDir, ...args]);

describe("greenwave audit from the store", () => {
  beforeAll(buildOnce, 180_000);

  it("prints one readable line per event, or the raw events with --json, and writes nothing", () => {
    const { dataDir, store } = storeWith([
      {
        atWallMs: T0 - 1000,
        type: "gateway-started",
        actor: null,
        detail: { plan: { id: "am", version: 1 }, fault: null },
      },
      {
        atWallMs: T0,
        type: "command",
        actor: "alice",
        detail: { command: "flash", id: "c1", ok: true, on: true },
      },
      {
        atWallMs: T0 + 1000,
        type: "command",
        actor: "bob",
        detail: {
          command: "flash",
          id: "c2",
          ok: false,
          on: false,
          refused: "a fault is latched (red-fail): reset it first",
        },
      },
      {
        atWallMs: T0 + 2000,
        type: "fault-latched",
        actor: null,
        detail: { kind: "red-fail", message: "M dark", groups: ["M", "S"] },
      },
    ]);
    const before = store.events();

    const text = audit(dataDir);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toBe(
      [
        "2026-11-30T09:12:02.120Z  #1  gateway-started  -  plan=am@v1 fault=none",
        "2026-11-30T09:12:03.120Z  #2  command  alice  flash on=true ok",
        "2026-11-30T09:12:04.120Z  #3  command  bob  flash on=false refused: a fault is latched (red-fail): reset it first",
        '2026-11-30T09:12:05.120Z  #4  fault-latched  -  kind=red-fail message="M dark" groups=M,S',
        "",
      ].join("\n"),
    );

    const json = audit(dataDir, "--json");
    expect(json.status, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(
      before.map((e) => ({
        seq: e.seq,
        at: new Date(e.atWallMs).toISOString(),
        type: e.type,
        actor: e.actor,
        detail: e.detail,
      })),
    );

    // Read only beside the open store: nothing added, and its writer goes on writing.
    expect(store.events()).toEqual(before);
    store.appendEvent({ atWallMs: T0 + 3000, type: "mode", actor: null, detail: { mode: "flash" } }, null);
    expect(audit(dataDir).stdout).toContain("#5  mode  -  mode=flash");
  }, 30_000);

  it("takes --since as an ISO time or a duration, and --limit as the newest N with a note", () => {
    const now = Date.now();
    const { dataDir } = storeWith([
      { atWallMs: now - 3 * 3_600_000, type: "mode", actor: null, detail: { mode: "startup" } },
      { atWallMs: now - 90 * 60_000, type: "mode", actor: null, detail: { mode: "transition" } },
      { atWallMs: now - 30 * 60_000, type: "mode", actor: null, detail: { mode: "coordinated" } },
      { atWallMs: now - 60_000, type: "mode", actor: null, detail: { mode: "flash" } },
    ]);
    const modes = (out: string) => [...out.matchAll(/mode=(\w+)/g)].map((m) => m[1]);

    expect(modes(audit(dataDir, "--since", "2h").stdout)).toEqual(["transition", "coordinated", "flash"]);
    expect(modes(audit(dataDir, "--since", "1h30m5s").stdout)).toEqual([
      "transition",
      "coordinated",
      "flash",
    ]);
    expect(modes(audit(dataDir, "--since", "45m").stdout)).toEqual(["coordinated", "flash"]);
    const iso = new Date(now - 2 * 60_000).toISOString();
    expect(modes(audit(dataDir, "--since", iso).stdout)).toEqual(["flash"]);

    const newest = audit(dataDir, "--limit", "2");
    expect(modes(newest.stdout)).toEqual(["coordinated", "flash"]);
    expect(newest.stderr).toContain("older events not shown");
    const all = audit(dataDir, "--limit", "4");
    expect(modes(all.stdout)).toHaveLength(4);
    expect(all.stderr).toBe("");

    const none = audit(dataDir, "--since", new Date(now + 60_000).toISOString());
    expect(none.status).toBe(0);
    expect(none.stdout).toBe("");
    expect(none.stderr).toContain("no events at elm since");
  }, 30_000);

  it("pages through a long trail: the newest 10,000, and --since finds events behind a clock jump", () => {
    const total = 2 * AUDIT_SCAN_ROWS + 2500;
    const events = Array.from({ length: total }, (_, i) => ({
      atWallMs: T0 + i,
      type: "mode",
      actor: null,
      detail: { mode: "coordinated", n: i },
    }));
    // The clock stepped back an hour after event 100: those after it are stamped earlier than it.
    for (const event of events.slice(101)) event.atWallMs -= 3_600_000;
    const { dataDir } = storeWith(events);

    const newest = audit(dataDir, "--limit", "10000", "--json");
    expect(newest.status, newest.stderr).toBe(0);
    const seqs = (JSON.parse(newest.stdout) as { seq: number }[]).map((e) => e.seq);
    expect(seqs).toEqual(Array.from({ length: 10_000 }, (_, i) => total - 10_000 + 1 + i));
    expect(newest.stderr).toContain("older events not shown");

    // Only events 0-100 are stamped at or after T0: they lie below two full scan windows of older stamps.
    const since = audit(dataDir, "--since", new Date(T0).toISOString(), "--json");
    expect(since.status, since.stderr).toBe(0);
    expect((JSON.parse(since.stdout) as { detail: { n: number } }[]).map((e) => e.detail.n)).toEqual(
      Array.from({ length: 101 }, (_, i) => i),
    );
  }, 60_000);

  it("refuses bad input in one line: exit 2 for usage, 1 for a missing store", () => {
    const { dataDir } = storeWith([]);
    const usage = [
      ["--intersection", "oak", "--data-dir", dataDir],
      ["--intersection", "../elm", "--data-dir", dataDir],
      ["--intersection", "elm", "--data-dir", dataDir, "--since", "yesterday"],
      ["--intersection", "elm", "--data-dir", dataDir, "--since", "2026-13-45T99:00:00Z"],
      ["--intersection", "elm", "--data-dir", dataDir, "--limit", "10001"],
      ["--intersection", "elm", "--data-dir", dataDir, "--limit", "0"],
      ["--intersection", "elm", "--data-dir", dataDir, "--broker", "mqtt://127.0.0.1:1"],
    ];
    for (const args of usage) {
      const run = cli(["audit", ...args]);
      expect(run.status, `${args.join(" ")}: ${run.stderr}`).toBe(2);
      expect(run.stderr.trim().split("\n"), args.join(" ")).toHaveLength(1);
      expect(run.stderr).toMatch(/^greenwave: /);
    }
    expect(cli(["audit", "--intersection", "oak", "--data-dir", dataDir]).stderr).toContain("found: elm");

    mkdirSync(join(dataDir, "oak"));
    const missing = cli(["audit", "--intersection", "oak", "--data-dir", dataDir]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe(
      `greenwave: no gateway store at ${join(dataDir, "oak", "gateway.db")} (a gateway writes it when it first starts)\n`,
    );
  }, 60_000);
});
