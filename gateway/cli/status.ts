import type { Command } from "commander";
import type { IntersectionView } from "../operator/operator-client.js";
import { addBrokerFlags, type BrokerFlags, connectOperator, DEMO_BROKER_URL } from "./broker-options.js";
import { watchStatus } from "./status-watch.js";
import { renderStatusTable, statusJson } from "./status-view.js";

interface StatusOptions extends BrokerFlags {
  corridor?: string;
  json?: boolean;
  wide?: boolean;
  watch?: boolean;
  timeoutMs: string;
}

export function registerStatusCommand(program: Command): void {
  const command = program
    .command("status")
    .description(
      "show every intersection of a corridor: mode, plan, stage, second of the cycle, offset error, in step, fault (--wide: also online, lock holder, last transaction, clock, release)",
    )
    .option("--corridor <id>", "only this corridor")
    .option("--json", "machine-readable output (stable: see docs/protocol.md)")
    .option("--wide", "every column, however wide (the default table fits 100 columns)")
    .option("--watch", "redraw every second until Ctrl-C (with --json: one JSON object a line)")
    .option("--timeout-ms <ms>", "how long to wait for the broker", "3000");
  addBrokerFlags(command, DEMO_BROKER_URL).action((options: StatusOptions) => runStatus(options));
}

async function runStatus(options: StatusOptions): Promise<void> {
  const client = await connectOperator(options);
  const corridor = options.corridor ?? null;
  const render = (views: readonly IntersectionView[], nowMs: number) => {
    const report = statusJson(corridor, views, nowMs);
    if (options.json)
      return options.watch ? `${JSON.stringify(report)}\n` : `${JSON.stringify(report, null, 2)}\n`;
    return renderStatusTable(report, client.url, { wide: options.wide === true });
  };
  if (options.watch) {
    await watchStatus(client, corridor, render, { json: options.json === true });
    return;
  }
  let views: IntersectionView[];
  try {
    views = await client.survey(corridor);
  } finally {
    await client.close();
  }
  process.stdout.write(render(views, Date.now()));
  if (views.length === 0) process.exitCode = 1;
}
