import type { Command } from "commander";
import type { IntersectionView } from "../operator/operator-client.js";
import { addBrokerFlags, type BrokerFlags, connectOperator, DEMO_BROKER_URL } from "./broker-options.js";

interface StatusOptions extends BrokerFlags {
  corridor?: string;
  json?: boolean;
  timeoutMs: string;
}

export function registerStatusCommand(program: Command): void {
  const command = program
    .command("status")
    .description(
      "show every intersection of a corridor: online, plan, mode, fault, lock holder, last transaction",
    )
    .option("--corridor <id>", "only this corridor")
    .option("--json", "machine-readable output (stable: see docs/protocol.md)")
    .option("--timeout-ms <ms>", "how long to wait for the broker", "3000");
  addBrokerFlags(command, DEMO_BROKER_URL).action((options: StatusOptions) => runStatus(options));
}

/** The stable `--json` shape (docs/protocol.md). */
export function statusJson(corridor: string | null, views: readonly IntersectionView[]) {
  return {
    corridor,
    intersections: views.map((view) => ({
      id: view.intersection,
      corridor: view.corridor,
      name: view.status?.name ?? null,
      online: view.availability?.online ?? false,
      plan: view.status ? { id: view.status.plan.id, version: view.status.plan.version } : null,
      mode: view.status?.mode ?? null,
      fault: view.status?.fault ?? null,
      lock: view.status?.lock ?? null,
      lastTxn: view.status?.lastTxn ?? null,
      updatedAt: view.status?.at ?? null,
    })),
  };
}

async function runStatus(options: StatusOptions): Promise<void> {
  const client = await connectOperator(options);
  let views: IntersectionView[];
  try {
    views = await client.survey(options.corridor ?? null);
  } finally {
    await client.close();
  }
  const report = statusJson(options.corridor ?? null, views);
  if (options.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    process.stdout.write(renderTable(report, client.url));
  }
  if (views.length === 0) process.exitCode = 1;
}

function renderTable(report: ReturnType<typeof statusJson>, url: string): string {
  if (report.intersections.length === 0)
    return `no intersection has published its status on ${url}${report.corridor ? ` for corridor ${report.corridor}` : ""}\n`;
  const rows = report.intersections.map((i) => [
    i.corridor,
    i.id,
    i.online ? "online" : "OFFLINE",
    i.plan ? `${i.plan.id} v${i.plan.version}` : "-",
    i.mode ?? "-",
    i.fault ? `${i.fault.kind}: ${i.fault.message}` : "-",
    i.lock ? `${i.lock.holder} #${i.lock.token}` : "-",
    i.lastTxn ? `${i.lastTxn.id} ${i.lastTxn.outcome}` : "-",
  ]);
  const header = ["CORRIDOR", "INTERSECTION", "ONLINE", "PLAN", "MODE", "FAULT", "LOCK", "LAST TXN"];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
  const line = (cells: readonly string[]) =>
    `${cells.map((cell, c) => (c === cells.length - 1 ? cell : cell.padEnd(widths[c] ?? 0))).join("  ")}\n`;
  return line(header) + rows.map(line).join("");
}
