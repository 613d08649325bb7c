import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { GatewayStore, STORE_FILE } from "../store/store.js";
import { addBrokerFlags, type BrokerFlags, connectOperator, DEMO_BROKER_URL } from "./broker-options.js";
import { UsageError } from "./usage-error.js";

interface OfflineOptions {
  intersection: string;
  dataDir: string;
  by: string;
}

interface ResetOptions extends BrokerFlags {
  intersection: string;
  corridor?: string;
  by: string;
  reason?: string;
  timeoutMs: string;
}

/**
 * `greenwave fault reset`: the operator's reset of a running gateway, over MQTT (the broker's ACL lets
 * only operators send commands). `fault show` / `fault clear`: at the cabinet, on the gateway's store,
 * for a gateway that is stopped. All of them are audited in the gateway's store.
 */
export function registerFaultCommands(program: Command): void {
  const fault = program.command("fault").description("latched faults");
  const reset = fault
    .command("reset")
    .description("clear the latched fault of a running gateway over MQTT (operators only); audited")
    .requiredOption("--intersection <id>", "intersection id")
    .option("--corridor <id>", "its corridor (found from its status when omitted)")
    .requiredOption("--by <operator>", "who resets it, for the audit trail")
    .option("--reason <text>", "why, for the audit trail")
    .option("--timeout-ms <ms>", "how long to wait for the gateway's reply", "5000");
  addBrokerFlags(reset, DEMO_BROKER_URL).action((options: ResetOptions) => runReset(options));
  fault
    .command("show")
    .description("print the latched fault stored by a gateway, if any")
    .requiredOption("--intersection <id>", "intersection id")
    .option("--data-dir <dir>", "the gateway's data directory", "/var/lib/greenwave")
    .action((options: Omit<OfflineOptions, "by">) => {
      const store = openExisting(options);
      try {
        const latch = store.load();
        process.stdout.write(
          latch ? `${JSON.stringify(latch)}\n` : `no latched fault at ${options.intersection}\n`,
        );
        if (latch) process.exitCode = 1;
      } finally {
        store.close();
      }
    });
  fault
    .command("clear")
    .description(
      "clear the latched fault of a STOPPED gateway in its store (it restarts through flash and all-red)",
    )
    .requiredOption("--intersection <id>", "intersection id")
    .requiredOption("--by <operator>", "who clears it, for the audit trail")
    .option("--data-dir <dir>", "the gateway's data directory", "/var/lib/greenwave")
    .action((options: OfflineOptions) => {
      const store = openExisting(options);
      try {
        const latch = store.load();
        if (!latch) {
          process.stdout.write(`no latched fault at ${options.intersection}\n`);
          return;
        }
        store.appendEvent(
          {
            atWallMs: Date.now(),
            type: "fault-reset",
            actor: options.by,
            detail: { offline: true, kind: latch.kind, message: latch.message },
          },
          null,
        );
        store.clear();
        process.stdout.write(
          `cleared ${latch.kind} at ${options.intersection} (${latch.message}); audited in ${store.file}\n`,
        );
      } finally {
        store.close();
      }
    });
}

function openExisting(options: { intersection: string; dataDir: string }): GatewayStore {
  const dir = resolve(options.dataDir, options.intersection);
  if (!existsSync(join(dir, STORE_FILE)))
    throw new UsageError(`no gateway store for ${options.intersection} in ${dir} (check --data-dir)`);
  return GatewayStore.open(dir);
}

async function runReset(options: ResetOptions): Promise<void> {
  const client = await connectOperator(options);
  try {
    const corridor = options.corridor ?? (await client.corridorOf(options.intersection));
    const reply = await client.command(corridor, options.intersection, "fault-reset", {
      by: options.by,
      ...(options.reason ? { reason: options.reason } : {}),
    });
    if (!reply.ok) {
      process.stderr.write(
        `greenwave: ${options.intersection} refused the reset: ${reply.error?.message ?? "no reason given"}\n`,
      );
      process.exitCode = 1;
      return;
    }
    const result = reply.result as { message?: string } | undefined;
    process.stdout.write(`${options.intersection}: ${result?.message ?? "done"}\n`);
  } finally {
    await client.close();
  }
}
