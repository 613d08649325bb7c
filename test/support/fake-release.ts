import { spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { machine, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { archOfMachine } from "../../gateway/release/manifest.js";
import { MIGRATIONS } from "../../gateway/store/migrations.js";

/**
 * Installed gateways in a temporary root, with releases whose `bin/greenwave` is a small script that
 * plays a gateway at the process level: it gets the unit's arguments, sends READY=1 (or never does)
 * to the NOTIFY_SOCKET it is given, latches a fault in the store with the store's own code, migrates
 * the store past this code's schema, or crashes — real processes, files and sockets, no systemd.
 */

const MAIN = resolve(".");
/** The schema the stores are at now (this code's migrations); the fakes go above it. */
export const SCHEMA = MIGRATIONS.length;
export const HERE_ARCH = archOfMachine(machine()) ?? "amd64";
export const OTHER_ARCH = HERE_ARCH === "amd64" ? "arm64" : "amd64";

export interface FakeBehaviour {
  /** Send READY=1 once started. */
  readonly ready: boolean;
  /** Migrate every store to this schema (a table of its own, user_version) at start, if below it. */
  readonly migrateTo?: number;
  /** Latch a red-fail before migrating: in both copies (the store's own save) or only in the database. */
  readonly latch?: "both" | "database";
  /** Exit 1 right after the migration, every start. */
  readonly crash?: boolean;
}

export interface FakeRelease {
  readonly version: string;
  readonly schemaVersion: number;
  readonly arch?: string;
  readonly behaviour: FakeBehaviour;
}

/** The fake gateway: ESM, run by this machine's node with the project's node_modules and dist/. */
const FAKE_GATEWAY = `
import { createRequire } from "node:module";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
const require = createRequire(${JSON.stringify(`${MAIN}/package.json`)});
const Database = require("better-sqlite3");
const spec = JSON.parse(process.argv[2]);
const args = process.argv.slice(3);
const dataDir = args[args.indexOf("--data-dir") + 1];
const notify = (text) => {
  if (!process.env.NOTIFY_SOCKET) return;
  const socket = require("unix-dgram").createSocket("unix_dgram");
  const buf = Buffer.from(text);
  socket.send(buf, 0, buf.length, process.env.NOTIFY_SOCKET, () => socket.close());
};
process.on("SIGTERM", () => process.exit(0));
notify("STATUS=start-up: opening the store");
for (const id of readdirSync(dataDir)) {
  const dir = join(dataDir, id);
  if (id === "backups" || !existsSync(join(dir, "gateway.db"))) continue;
  const peek = new Database(join(dir, "gateway.db"));
  const version = peek.pragma("user_version", { simple: true });
  peek.close();
  if (!spec.migrateTo || version >= spec.migrateTo) continue;
  const latch = { kind: "red-fail", groups: ["M"], message: "red lamp of M failed (" + spec.version + ")", atWallMs: Date.now() };
  if (spec.latch === "both") {
    const { GatewayStore } = await import(${JSON.stringify(`${MAIN}/dist/gateway/store/store.js`)});
    const store = GatewayStore.open(dir);
    store.save(latch);
    store.appendEvent({ atWallMs: latch.atWallMs, type: "fault-latched", actor: null, detail: { kind: latch.kind } }, null);
    store.close();
  }
  const db = new Database(join(dir, "gateway.db"));
  db.transaction(() => {
    if (spec.latch === "database") {
      db.prepare("INSERT OR REPLACE INTO latch (id, kind, message, groups, at_wall_ms) VALUES (1, ?, ?, ?, ?)")
        .run(latch.kind, latch.message, JSON.stringify(latch.groups), latch.atWallMs);
      db.prepare("INSERT INTO events (at_wall_ms, type, actor, detail) VALUES (?, 'fault-latched', NULL, '{}')").run(latch.atWallMs);
    }
    db.exec("CREATE TABLE release_" + spec.migrateTo + "_extra (x INTEGER) STRICT");
    db.pragma("user_version = " + spec.migrateTo);
  })();
  db.close();
}
if (spec.crash) process.exit(1);
if (spec.ready) notify("READY=1\\nSTATUS=in service");
else notify("STATUS=start-up flash: waiting for module io1");
setInterval(() => {}, 60_000);
`;

export interface FakeRoot {
  readonly root: string;
  readonly data: string;
  readonly store: string;
  release(release: FakeRelease): string;
}

/** A root with /opt/greenwave/releases, /var/lib/greenwave and /etc/greenwave, and the fake gateway. */
export function fakeRoot(): FakeRoot {
  const root = mkdtempSync(join(tmpdir(), "greenwave-root-"));
  const data = join(root, "var/lib/greenwave");
  mkdirSync(join(root, "opt/greenwave/releases"), { recursive: true });
  mkdirSync(data, { recursive: true });
  mkdirSync(join(root, "etc/greenwave"), { recursive: true });
  writeFileSync(join(root, "etc/greenwave/gateway.env"), 'GREENWAVE_ARGS="--tick-ms 100"\n');
  writeFileSync(join(root, "fake-gateway.mjs"), FAKE_GATEWAY);
  return {
    root,
    data,
    store: join(data, "elm"),
    release: (release) => writeRelease(join(root, "opt/greenwave/releases", release.version), root, release),
  };
}

/** Writes a release tree at `dir` (for releases/<version>, or greenwave-<version>/ of a tarball). */
export function writeRelease(dir: string, root: string, release: FakeRelease): string {
  mkdirSync(join(dir, "bin"), { recursive: true });
  writeFileSync(
    join(dir, "release.json"),
    JSON.stringify({
      version: release.version,
      arch: release.arch ?? HERE_ARCH,
      node: process.versions.node,
      schemaVersion: release.schemaVersion,
      commit: "0000000",
    }),
  );
  const spec = JSON.stringify({ ...release.behaviour, version: release.version }).replaceAll("'", "");
  writeFileSync(
    join(dir, "bin/greenwave"),
    `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(join(root, "fake-gateway.mjs"))} '${spec}' "$@"\n`,
  );
  chmodSync(join(dir, "bin/greenwave"), 0o755);
  return dir;
}

/**
 * A greenwave .deb as the field contract has it: the release tree staged at usr/lib/greenwave/release/
 * and a postinst that copies it to opt/greenwave/releases/<version>/ and hands over to `release
 * activate` (this checkout's compiled command, with `activate` flags). Its maintainer script runs
 * without chroot (DPKG_FORCE=script-chrootless, see debInstallEnv) on $DPKG_ROOT.
 */
export function fakeDeb(dir: string, root: string, release: FakeRelease, activate: string[] = []): string {
  const tree = join(dir, `deb-${release.version}-${release.arch ?? HERE_ARCH}-${release.schemaVersion}`);
  mkdirSync(join(tree, "DEBIAN"), { recursive: true });
  writeRelease(join(tree, "usr/lib/greenwave/release"), root, release);
  writeFileSync(
    join(tree, "DEBIAN/control"),
    `Package: greenwave\nVersion: ${release.version}\nArchitecture: ${release.arch ?? HERE_ARCH}\nMaintainer: test <t@example.org>\nDescription: test\n`,
  );
  const v = release.version;
  writeFileSync(
    join(tree, "DEBIAN/postinst"),
    `#!/bin/sh
set -e
[ "$1" = configure ] || exit 0
mkdir -p "$DPKG_ROOT/opt/greenwave/releases"
rm -rf "$DPKG_ROOT/opt/greenwave/releases/${v}"
cp -a "$DPKG_ROOT/usr/lib/greenwave/release" "$DPKG_ROOT/opt/greenwave/releases/${v}"
exec ${JSON.stringify(process.execPath)} ${JSON.stringify(`${MAIN}/dist/gateway/cli/main.js`)} release activate ${v} --root "$DPKG_ROOT" ${activate.join(" ")}
`,
  );
  chmodSync(join(tree, "DEBIAN/postinst"), 0o755);
  const deb = `${tree}.deb`;
  const built = spawnSync("dpkg-deb", ["--root-owner-group", "--build", tree, deb], { encoding: "utf8" });
  if (built.status !== 0) throw new Error(built.stderr);
  return deb;
}

/** dpkg's database in the root, so that `dpkg --root` installs there and nowhere else. */
export function dpkgDatabase(root: string): void {
  for (const dir of ["info", "updates", "triggers"])
    mkdirSync(join(root, "var/lib/dpkg", dir), { recursive: true });
  for (const file of ["status", "available"]) writeFileSync(join(root, "var/lib/dpkg", file), "");
}

/** The maintainer scripts run on the host against $DPKG_ROOT: the temp root has no shell to chroot into. */
export const debInstallEnv = { DPKG_FORCE: "script-chrootless" };

export interface Run {
  code: number | null;
  out: string;
  err: string;
  ms: number;
}

/** The compiled command as a process, asynchronously (an activation waits seconds on its trial). */
export function greenwave(args: string[], timeoutMs = 60_000, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const started = performance.now();
  return new Promise((done) => {
    const child = spawn("node", ["dist/gateway/cli/main.js", ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env },
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const kill = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(kill);
      done({ code, out, err, ms: performance.now() - started });
    });
  });
}

/** `tar -czf`, from `cwd`, of `paths` as given (-P keeps a `..` in a name, as a hostile archive has it). */
export function makeTarball(file: string, cwd: string, paths: string[]): void {
  const result = spawnSync("tar", ["-czPf", file, ...paths], { cwd, encoding: "utf8" });
  if (result.status !== 0) throw new Error(`tar failed: ${result.stderr}`);
}
