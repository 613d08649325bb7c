import type { Command } from "commander";
import { loadCorridor } from "../config/load.js";
import { CorridorModel } from "../console/corridor-model.js";
import { startConsole } from "../console/server.js";
import {
  addBrokerFlags,
  type BrokerFlags,
  brokerSettings,
  DEMO_BROKER_URL,
  parseListenAddress,
} from "./broker-options.js";
import { EXAMPLE_CORRIDOR } from "./demo.js";
import { explainPortInUse } from "./port-in-use.js";
import { UsageError } from "./usage-error.js";

interface ConsoleFlags extends BrokerFlags {
  http: string;
  corridor: string;
}

export const DEFAULT_CONSOLE_ADDRESS = "127.0.0.1:8080";

export function registerConsoleCommand(program: Command): void {
  const command = program
    .command("console")
    .description(
      "the web console (read-only): every intersection of the corridor live with its signal heads, and the time-space diagram with the progression bands, from the broker (docs/console.md)",
    )
    .option(
      "--http <host:port>",
      "where the console listens (port 0: any free port)",
      DEFAULT_CONSOLE_ADDRESS,
    )
    .option(
      "--corridor <file>",
      "the corridor file (default: the example corridor the demo runs)",
      EXAMPLE_CORRIDOR,
    );
  addBrokerFlags(command, DEMO_BROKER_URL).action((flags: ConsoleFlags) => runConsole(flags));
}

async function runConsole(flags: ConsoleFlags): Promise<void> {
  const listen = parseListenAddress(flags.http, "--http");
  const broker = brokerSettings(flags);
  if (!broker) throw new UsageError("--broker is required");
  const model = new CorridorModel(loadCorridor(flags.corridor));
  const running = await startConsole({
    model,
    broker,
    host: listen.host,
    port: listen.port,
    warn: (message) => process.stderr.write(`greenwave console: ${message}\n`),
  }).catch((error: unknown) => explainPortInUse(error, "the console", "--http"));
  process.stdout.write(
    `greenwave console: corridor ${model.id} (${model.sites.length} intersections) from ${broker.url}, read-only\n` +
      `  open ${running.url}  (live state: ${running.url}api/state)\n`,
  );
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await running.close();
}
