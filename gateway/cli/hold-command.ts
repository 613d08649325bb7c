import type { Command } from "commander";
import { DEFAULT_HOLD_MS, MAX_HOLD_MS } from "../core/sequencer.js";
import { describeDuration } from "../node/commands.js";
import { addBrokerFlags, type BrokerFlags, connectOperator, DEMO_BROKER_URL } from "./broker-options.js";
import { parseDuration } from "./duration-text.js";
import { UsageError } from "./usage-error.js";

interface HoldOptions extends BrokerFlags {
  intersection: string;
  corridor?: string;
  for?: string;
  by?: string;
  timeoutMs: string;
}

/**
 * `greenwave hold on|off`: a maintenance hold of the stage a running intersection shows, over MQTT
 * (operators only), audited under the operator's broker login. The stage shown stays (its green does not
 * end) until `hold off`, until `--for` runs out, or until flash, a stop or a fault ends it; on release the
 * sequence goes on from the held stage and offset correction brings it back into step.
 */
export function registerHoldCommand(program: Command): void {
  const command = program
    .command("hold")
    .description(
      "hold the stage a running intersection shows (maintenance), or release it, over MQTT; audited under your broker login",
    )
    .argument("<on|off>", "on: keep the stage shown; off: release it (the sequence goes on from it)")
    .requiredOption("--intersection <id>", "intersection id")
    .option(
      "--for <duration>",
      `how long the hold lasts at most (e.g. 10m, 1h30m; default ${describeDuration(DEFAULT_HOLD_MS)}, at most ${describeDuration(MAX_HOLD_MS)})`,
    )
    .option("--corridor <id>", "its corridor (found from its status when omitted)")
    .option(
      "--by <note>",
      "a note for the audit trail (who is at the cabinet, why); your identity is your broker login",
    )
    .option("--timeout-ms <ms>", "how long to wait for the gateway's reply", "5000");
  addBrokerFlags(command, DEMO_BROKER_URL).action((state: string, options: HoldOptions) =>
    runHold(state, options),
  );
}

/** `--for`, checked before anything is sent: at least a second, at most MAX_HOLD_MS. */
export function holdDuration(text: string | undefined, on: boolean): number | undefined {
  if (text === undefined) return undefined;
  if (!on) throw new UsageError("--for goes with hold on (hold off releases the hold now)");
  const ms = parseDuration(text, "--for");
  if (ms < 1000 || ms > MAX_HOLD_MS)
    throw new UsageError(`--for must be from 1 s to ${describeDuration(MAX_HOLD_MS)}, got "${text}"`);
  return ms;
}

async function runHold(state: string, options: HoldOptions): Promise<void> {
  if (state !== "on" && state !== "off") throw new UsageError(`hold takes on or off, got "${state}"`);
  const forMs = holdDuration(options.for, state === "on");
  const client = await connectOperator(options);
  try {
    const corridor = options.corridor ?? (await client.corridorOf(options.intersection));
    const by = options.by ?? options.username ?? process.env.USER ?? "operator";
    const reply = await client.command(corridor, options.intersection, "hold", {
      by,
      on: state === "on",
      ...(forMs !== undefined ? { forMs } : {}),
    });
    if (!reply.ok) {
      process.stderr.write(
        `greenwave: ${options.intersection} refused hold ${state}: ${reply.error?.message ?? "no reason given"}\n`,
      );
      process.exitCode = 1;
      return;
    }
    const result = reply.result as { message?: string } | undefined;
    process.stdout.write(`${options.intersection}: ${result?.message ?? `hold ${state}`}\n`);
  } finally {
    await client.close();
  }
}
