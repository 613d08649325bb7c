import type { Command } from "commander";
import { addBrokerFlags, type BrokerFlags, connectOperator, DEMO_BROKER_URL } from "./broker-options.js";
import { UsageError } from "./usage-error.js";

interface FlashOptions extends BrokerFlags {
  intersection: string;
  corridor?: string;
  by?: string;
  timeoutMs: string;
}

/**
 * `greenwave flash on|off`: scheduled (maintenance) flash of a running gateway, over MQTT (operators
 * only), audited under the operator's broker login. The gateway enters flash through its clearances
 * and leaves it through all-red; it refuses while a fault is latched (a fault's flash ends only by a
 * reset).
 */
export function registerFlashCommand(program: Command): void {
  const command = program
    .command("flash")
    .description(
      "put a running intersection into scheduled flash (on) or back to its plan (off), over MQTT; audited under your broker login",
    )
    .argument("<on|off>", "on: enter flash through the clearances; off: leave it through all-red")
    .requiredOption("--intersection <id>", "intersection id")
    .option("--corridor <id>", "its corridor (found from its status when omitted)")
    .option(
      "--by <note>",
      "a note for the audit trail (who is at the cabinet, why); your identity is your broker login",
    )
    .option("--timeout-ms <ms>", "how long to wait for the gateway's reply", "5000");
  addBrokerFlags(command, DEMO_BROKER_URL).action((state: string, options: FlashOptions) =>
    runFlash(state, options),
  );
}

async function runFlash(state: string, options: FlashOptions): Promise<void> {
  if (state !== "on" && state !== "off") throw new UsageError(`flash takes on or off, got "${state}"`);
  const client = await connectOperator(options);
  try {
    const corridor = options.corridor ?? (await client.corridorOf(options.intersection));
    const by = options.by ?? options.username ?? process.env.USER ?? "operator";
    const reply = await client.command(corridor, options.intersection, "flash", { by, on: state === "on" });
    if (!reply.ok) {
      process.stderr.write(
        `greenwave: ${options.intersection} refused flash ${state}: ${reply.error?.message ?? "no reason given"}\n`,
      );
      process.exitCode = 1;
      return;
    }
    const result = reply.result as { message?: string } | undefined;
    process.stdout.write(`${options.intersection}: ${result?.message ?? `flash ${state}`}\n`);
  } finally {
    await client.close();
  }
}
