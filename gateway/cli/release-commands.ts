import { userInfo } from "node:os";
import type { Command } from "commander";
import { activateRelease } from "../release/activate.js";
import type { ActivateOptions, ActivationResult } from "../release/activation.js";
import { SERVICE_MANAGERS, type ServiceManagerChoice } from "../release/choose-manager.js";
import { DEFAULT_BOUNDS, type GateBounds } from "../release/health-gate.js";
import { upgrade } from "../release/upgrade.js";
import { UsageError } from "./usage-error.js";

interface GateFlags {
  root: string;
  readyWithin: string;
  settle: string;
  maxCrashes: string;
  serviceManager: string;
}

/**
 * `greenwave release activate <version>` and `greenwave upgrade FILE` (docs/upgrades.md): health-gated
 * switches of the installed release, with automatic rollback. Exit 0: the release is active (or was
 * already); 1: refused (nothing changed) or rolled back (the previous release runs); 2: wrong command line.
 */
export function registerReleaseCommands(program: Command): void {
  const release = program.command("release").description("the releases installed on a gateway");
  withGateFlags(
    release
      .command("activate")
      .description(
        "make an installed release current: back up the stores it migrates, switch, start it, and roll back to the previous release and store if it does not report READY or keeps crashing",
      )
      .argument("<version>", "a release in /opt/greenwave/releases/"),
  ).action((version: string, flags: GateFlags) => run((options) => activateRelease(version, options), flags));
  withGateFlags(
    program
      .command("upgrade")
      .description(
        "install a greenwave .deb (dpkg -i; its postinst activates it) or .tar.gz (checked, unpacked into /opt/greenwave/releases/) and activate it through the health gate",
      )
      .argument("<file>", "greenwave_<version>_<arch>.deb or greenwave-<version>-<arch>.tar.gz"),
  ).action((file: string, flags: GateFlags) => run((options) => upgrade(file, options), flags));
}

function withGateFlags(command: Command): Command {
  return command
    .option("--root <dir>", "prefix of every path (/opt/greenwave, /var/lib/greenwave, /etc/greenwave)", "/")
    .option(
      "--ready-within <seconds>",
      "the new release must report READY within this",
      String(DEFAULT_BOUNDS.readyWithinMs / 1000),
    )
    .option("--settle <seconds>", "then stay up this long", String(DEFAULT_BOUNDS.settleMs / 1000))
    .option(
      "--max-crashes <n>",
      "this many crashes from its start fail it",
      String(DEFAULT_BOUNDS.maxCrashes),
    )
    .option(
      "--service-manager <name>",
      "auto (systemd when it runs this machine, else switch only) | systemd | direct (greenwave starts the gateway itself, a trial run) | none",
      "auto",
    );
}

function parseSeconds(value: string, flag: string, min: number, max: number): number {
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds < min || seconds > max)
    throw new UsageError(`${flag} must be a number of seconds from ${min} to ${max}, got "${value}"`);
  return Math.round(seconds * 1000);
}

export function parseGateBounds(flags: GateFlags): GateBounds {
  const maxCrashes = Number(flags.maxCrashes);
  if (!Number.isInteger(maxCrashes) || maxCrashes < 1 || maxCrashes > 100)
    throw new UsageError(`--max-crashes must be a whole number from 1 to 100, got "${flags.maxCrashes}"`);
  return {
    readyWithinMs: parseSeconds(flags.readyWithin, "--ready-within", 0.1, 3600),
    settleMs: parseSeconds(flags.settle, "--settle", 0, 3600),
    maxCrashes,
  };
}

/** Who runs it, for the audit trail: the operator behind sudo, else the user (root under dpkg). */
function actor(): string {
  if (process.env.SUDO_USER) return process.env.SUDO_USER;
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? "?"}`;
  }
}

async function run(
  work: (options: ActivateOptions) => Promise<ActivationResult>,
  flags: GateFlags,
): Promise<void> {
  if (!(SERVICE_MANAGERS as readonly string[]).includes(flags.serviceManager))
    throw new UsageError(
      `--service-manager must be one of ${SERVICE_MANAGERS.join(", ")}, got "${flags.serviceManager}"`,
    );
  const bounds = parseGateBounds(flags);
  // A stop signal during the trial fails it (and so rolls it back); the rollback then runs to its
  // end, whatever else arrives: cut short, it would leave neither release running.
  const abort = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (!abort.signal.aborted) {
      process.stdout.write(`greenwave: ${signal}: the trial is over; rolling back if a switch was made\n`);
      abort.abort(signal);
    } else process.stdout.write(`greenwave: ${signal}: the rollback is under way and runs to its end\n`);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const result = await work({
      root: flags.root,
      bounds,
      serviceManager: flags.serviceManager as ServiceManagerChoice,
      actor: actor(),
      report: (line) => process.stdout.write(`greenwave: ${line}\n`),
      signal: abort.signal,
    });
    if (result.exitCode === 0) process.stdout.write(`greenwave: ${result.message}\n`);
    else process.stderr.write(`greenwave: ${result.message}\n`);
    process.exitCode = result.exitCode;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
