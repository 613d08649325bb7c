import { spawnSync } from "node:child_process";
import { copyFileSync, lstatSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  expectTwoCyclesFollowPlan,
  history,
  type Proc,
  registerProcessHooks,
  start,
  startSim,
  type Sim,
} from "../e2e/gateway-sim.js";
import { FIXTURE, fixtureFiles, writeFixtureFiles } from "../support/fixture-intersection.js";
import { decode, GROUPS, type HistoryEntry } from "../support/lamp-history.js";
import {
  asServiceUser,
  ELF_MACHINE,
  elfMachine,
  filesEndingWith,
  inRoot,
  mustRun,
  passwdEntry,
  unmetDependencies,
  verifyTarget,
} from "./root.js";

/**
 * The package as a technician installs it: `dpkg -i` into a clean Debian bookworm minbase root (no
 * network, no compiler, no Node of its own), then the installed `greenwave gateway` drives the
 * installed `greenwave sim io-module` over TCP on loopback, both as the service user, and the lamps
 * the simulator recorded must follow the plan — the same assertions as the gateway + simulator e2e test.
 * Run by packaging/verify/verify.sh (npm run package:check / package:verify), never by `npm test`.
 */

const target = verifyTarget();
const { root, arch } = target;
const BUNDLED_NODE = "22.23.5";
const figures: Record<string, unknown> = {
  arch,
  deb: basename(target.deb),
  debBytes: statSync(target.deb).size,
};
const release = () =>
  JSON.parse(readFileSync(join(root, "opt/greenwave/current/release.json"), "utf8")) as {
    version: string;
    arch: string;
    node: string;
  };

registerProcessHooks();

afterAll(() => {
  if (target.report) writeFileSync(target.report, `${JSON.stringify(figures, null, 2)}\n`);
});

/**
 * Polls the simulator's history until an entry matches (the probe in gateway-sim is synchronous); a
 * gateway that exits first ends the wait with its own output.
 */
async function firstEntry(
  sim: Sim,
  gateway: Proc,
  what: string,
  ms: number,
  match: (e: HistoryEntry) => boolean,
) {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = (await history(sim)).find(match);
    if (found) return found;
    if (gateway.child.exitCode !== null || gateway.child.signalCode !== null)
      throw new Error(
        `the gateway exited (${gateway.child.exitCode ?? gateway.child.signalCode}) before ${what}:\n${gateway.text()}`,
      );
    if (Date.now() > deadline)
      throw new Error(`timed out after ${ms} ms waiting for ${what}; the gateway said:\n${gateway.text()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe(`${basename(target.deb)} installed into a clean Debian bookworm minbase root (${arch})`, () => {
  it("is built for the target architecture and depends on nothing a minimal Debian lacks", () => {
    const field = (name: string) => mustRunHost(["dpkg-deb", "-f", target.deb, name]).trim();
    expect(field("Package")).toBe("greenwave");
    expect(field("Architecture")).toBe(arch);
    expect(unmetDependencies(root, target.deb), "Depends not in debootstrap --variant=minbase").toEqual([]);
  });

  it("installs with dpkg -i with no network at all", () => {
    copyFileSync(target.deb, join(root, "tmp", basename(target.deb)));
    const began = performance.now();
    const r = inRoot(root, ["dpkg", "-i", `/tmp/${basename(target.deb)}`], 600_000, true);
    figures.dpkgInstallMs = Math.round(performance.now() - began);
    expect(r.status, `dpkg -i failed:\n${r.stdout}${r.stderr}`).toBe(0);
    expect(mustRun(root, ["dpkg-query", "-W", "-f=${Status}", "greenwave"])).toBe("install ok installed");
    figures.installedKiB = Number(mustRun(root, ["dpkg-query", "-W", "-f=${Installed-Size}", "greenwave"]));
  });

  it("the maintainer scripts made the service user, its state, its secret and the release links", () => {
    const user = passwdEntry(root, "greenwave");
    expect(user, "no greenwave user").not.toBeNull();
    const { uid, gid } = user as { uid: number; gid: number };
    expect(mustRun(root, ["id", "-nG", "greenwave"]).trim().split(/\s+/)).toContain("dialout");

    const state = statSync(join(root, "var/lib/greenwave"));
    expect(state.isDirectory()).toBe(true);
    expect((state.mode & 0o7777).toString(8), "/var/lib/greenwave mode").toBe("750");
    expect([state.uid, state.gid], "/var/lib/greenwave owner").toEqual([uid, gid]);

    const secret = lstatSync(join(root, "etc/greenwave/broker.secret"));
    expect(secret.isFile()).toBe(true);
    expect((secret.mode & 0o7777).toString(8), "/etc/greenwave/broker.secret mode").toBe("600");
    expect(secret.uid, "/etc/greenwave/broker.secret owner").toBe(uid);

    const { version, arch: releaseArch, node } = release();
    expect(readlinkSync(join(root, "opt/greenwave/current"))).toBe(`releases/${version}`);
    expect(releaseArch).toBe(arch);
    expect(node).toBe(BUNDLED_NODE);
    expect(readlinkSync(join(root, "usr/bin/greenwave"))).toBe("/opt/greenwave/current/bin/greenwave");
    figures.version = version;

    const printed = inRoot(root, ["/usr/bin/greenwave", "--version"], 60_000);
    expect(printed.status, printed.stderr).toBe(0);
    expect(printed.stdout.trim()).toBe(version);
  });

  it(`runs on the bundled Node ${BUNDLED_NODE} built for ${arch}, not on the machine's Node`, () => {
    // The root has no Node at all; the host's is another major version: the answer can only come from the bundle.
    expect(inRoot(root, ["sh", "-c", "command -v node nodejs"]).stdout.trim()).toBe("");
    expect(process.version.startsWith("v22.")).toBe(false);
    expect(mustRun(root, ["/opt/greenwave/current/node/bin/node", "--version"], 60_000).trim()).toBe(
      `v${BUNDLED_NODE}`,
    );
    const current = join(root, "opt/greenwave/releases", release().version);
    expect(elfMachine(join(current, "node/bin/node")), "the bundled node's ELF machine").toBe(
      ELF_MACHINE[arch],
    );
    const addons = filesEndingWith(join(current, "app/node_modules"), ".node");
    expect(addons.length, "native addons in the release").toBeGreaterThan(0);
    for (const addon of addons) expect(elfMachine(addon), addon).toBe(ELF_MACHINE[arch]);
  });

  it("the installed gateway drives the installed simulator over TCP on loopback: the lamps follow the plan", async () => {
    const greenwave = asServiceUser(root, "/usr/bin/greenwave");
    const sim = await startSim("tcp", greenwave);
    // The configuration a technician writes: /etc/greenwave/intersection.yaml (with its corridor and plan
    // beside it), the device profile from the installed release.
    writeFixtureFiles(
      join(root, "etc/greenwave"),
      fixtureFiles(sim.link, {
        intersectionFile: "intersection.yaml",
        profile: "/opt/greenwave/current/app/config/devices/generic-do32-di32.yaml",
      }),
    );
    const began = Date.now();
    const gateway = start(
      ["gateway", "--config", "/etc/greenwave/intersection.yaml", "--data-dir", "/var/lib/greenwave"],
      greenwave,
    );
    // Cold start: from the exec of the launcher to the first output the module receives, which must be
    // the start-up flash (vehicle reds flashing, pedestrian heads dark). Emulated arm64 starts Node
    // slowly, hence the longer bound there.
    const first = await firstEntry(
      sim,
      gateway,
      "the gateway's first write",
      arch === "amd64" ? 30_000 : 180_000,
      (e) => e.cause === "write" && e.t >= began,
    );
    figures.coldStartToFirstSafeOutputMs = first.t - began;
    const lamps = decode(first.outputs);
    for (const g of GROUPS) {
      const flash = FIXTURE.groups[g].kind === "vehicle" ? ["R", "-"] : ["-"];
      expect(flash, `${g} in the first output ${first.outputs}: not the start-up flash`).toContain(lamps[g]);
    }
    await expectTwoCyclesFollowPlan(sim, gateway);
    figures.rssAfterTwoCyclesKiB = rssKiB(gateway.child.pid);
  });
});

function mustRunHost(args: string[]): string {
  const r = spawnSync(args[0] as string, args.slice(1), { encoding: "utf8", timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}

/** Resident set size of a process, from /proc (the gateway's own, not the launcher's: it execs). */
function rssKiB(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  const line = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return line ? Number(line[1]) : null;
}
