import type { Command } from "commander";
import {
  DEFAULT_LAMP_STEP_MS,
  LAMP_WORDS,
  type LampResult,
  type LampTestReport,
  MAX_LAMP_STEP_MS,
  MIN_LAMP_STEP_MS,
} from "../core/lamp-test.js";
import { formatSeconds } from "../core/units.js";
import { type OperatorClient, OperatorError } from "../operator/operator-client.js";
import { addBrokerFlags, type BrokerFlags, connectOperator, DEMO_BROKER_URL } from "./broker-options.js";
import { parseDuration } from "./duration-text.js";
import { UsageError } from "./usage-error.js";

interface LampTestOptions extends BrokerFlags {
  intersection: string;
  corridor?: string;
  confirm?: boolean;
  abort?: boolean;
  step?: string;
  by?: string;
  json?: boolean;
  timeoutMs: string;
}

/** How often the command asks the gateway how far the test is. */
const POLL_MS = 1000;
/** Room above the test's own bound before the command gives up waiting for its end. */
const WAIT_ALLOWANCE_MS = 30_000;

/**
 * `greenwave lamp-test`: the lamp walk test of commissioning, over MQTT (operators only), audited under
 * the operator's broker login. Refused unless the intersection is in scheduled flash and the operator
 * confirms; then every lamp is lit alone in turn (core/lamp-test.ts) and the command prints, lamp by
 * lamp, whether the readback saw it lit, and a table at the end. Ctrl-C (or `--abort` from another
 * terminal) aborts it; the lamp lit then ends through its clearances.
 */
export function registerLampTestCommand(program: Command): void {
  const command = program
    .command("lamp-test")
    .description(
      "commissioning: light every lamp of an intersection in scheduled flash in turn and report which ones the readback saw lit, over MQTT; needs --confirm; audited",
    )
    .requiredOption("--intersection <id>", "intersection id")
    .option("--confirm", "start it (without: say what it does, exit 2)")
    .option(
      "--step <duration>",
      `how long each lamp is lit alone (${formatSeconds(MIN_LAMP_STEP_MS)} to ${formatSeconds(MAX_LAMP_STEP_MS)}; a green or WALK at least its minimum)`,
      `${DEFAULT_LAMP_STEP_MS / 1000}s`,
    )
    .option("--abort", "abort the lamp test running there")
    .option("--corridor <id>", "its corridor (found from its status when omitted)")
    .option("--by <note>", "a note for the audit trail; your identity is your broker login")
    .option("--json", "print the final report as JSON")
    .option("--timeout-ms <ms>", "how long to wait for each reply of the gateway", "5000");
  addBrokerFlags(command, DEMO_BROKER_URL).action((options: LampTestOptions) => runLampTest(options));
}

/** What the test does, for an operator who has not confirmed it. */
export function lampTestWarning(intersection: string, stepMs: number): string {
  return [
    `greenwave lamp-test lights every lamp of ${intersection} alone, in turn — each vehicle head's red, yellow`,
    `and green, each pedestrian head's DON'T WALK and WALK — for ${formatSeconds(stepMs)} each; a green or WALK stays`,
    "lit for its minimum and then runs its yellow or flashing DON'T WALK and its red clearance, as in",
    "service. Meanwhile every other vehicle head flashes red (an all-way stop) and every pedestrian head is",
    "dark. It runs only while the intersection is in scheduled flash (greenwave flash on), and reports for",
    "each lamp whether its readback saw it lit; the conflict monitor checks everything it shows, and a",
    "stuck or crossed channel latches a fault. Warn traffic (or close the intersection) first.",
    "Run it again with --confirm to start it.",
    "",
  ].join("\n");
}

function stepOf(options: LampTestOptions): number {
  const ms = parseDuration(options.step ?? "2s", "--step");
  if (ms < MIN_LAMP_STEP_MS || ms > MAX_LAMP_STEP_MS)
    throw new UsageError(
      `--step must be from ${formatSeconds(MIN_LAMP_STEP_MS)} to ${formatSeconds(MAX_LAMP_STEP_MS)}, got "${options.step}"`,
    );
  return ms;
}

async function runLampTest(options: LampTestOptions): Promise<void> {
  const stepMs = stepOf(options);
  if (options.abort && options.confirm) throw new UsageError("--abort and --confirm do not go together");
  if (!options.abort && !options.confirm) {
    process.stderr.write(lampTestWarning(options.intersection, stepMs));
    process.exitCode = 2;
    return;
  }
  const client = await connectOperator(options);
  try {
    const corridor = options.corridor ?? (await client.corridorOf(options.intersection));
    const by = options.by ?? options.username ?? process.env.USER ?? "operator";
    const send = (body: Record<string, unknown>) =>
      client.command(corridor, options.intersection, "lamp-test", { by, ...body });
    if (options.abort) {
      const reply = await send({ action: "abort" });
      if (!reply.ok) return refused(options.intersection, "the abort", reply.error?.message);
      process.stdout.write(
        `${options.intersection}: ${(reply.result as { message?: string }).message ?? "aborting"}\n`,
      );
      return;
    }
    const started = await send({ action: "start", stepMs, confirm: true });
    if (!started.ok) return refused(options.intersection, "the lamp test", started.error?.message);
    const result = started.result as { message: string; boundMs: number };
    if (!options.json) process.stdout.write(`${options.intersection}: ${result.message}\n`);
    const report = await follow(client, send, started.id as string, result.boundMs, options);
    if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else process.stdout.write(lampTestTable(options.intersection, report));
    const allOk = report.state === "completed" && report.results.every((r) => r.verdict === "ok");
    if (!allOk) process.exitCode = 1;
  } finally {
    await client.close();
  }
}

function refused(intersection: string, what: string, message: string | undefined): void {
  process.stderr.write(`greenwave: ${intersection} refused ${what}: ${message ?? "no reason given"}\n`);
  process.exitCode = 1;
}

/**
 * Asks for the report every second until the test has ended, printing each lamp's verdict as it comes;
 * the first Ctrl-C sends the abort (the gateway then ends the lamp lit through its clearances).
 */
async function follow(
  client: OperatorClient,
  send: (body: Record<string, unknown>) => ReturnType<OperatorClient["command"]>,
  id: string,
  boundMs: number,
  options: LampTestOptions,
): Promise<LampTestReport> {
  const deadline = Date.now() + boundMs + WAIT_ALLOWANCE_MS;
  let printed = 0;
  let aborting: Promise<unknown> | null = null;
  const onInterrupt = () => {
    if (aborting) return;
    process.stderr.write(`greenwave: aborting the lamp test at ${options.intersection}…\n`);
    aborting = send({ action: "abort" }).catch(() => undefined);
  };
  process.on("SIGINT", onInterrupt);
  try {
    for (;;) {
      const reply = await send({ action: "report" });
      const report = reply.ok ? (reply.result as { report: LampTestReport | null }).report : null;
      if (!report || report.id !== id)
        throw new OperatorError(
          `${options.intersection} no longer reports this lamp test (was its gateway restarted?): see greenwave audit --intersection ${options.intersection}`,
        );
      if (!options.json)
        for (const r of report.results.slice(printed)) process.stdout.write(`  ${resultLine(r)}\n`);
      printed = report.results.length;
      if (report.state !== "running") return report;
      if (Date.now() > deadline)
        throw new OperatorError(
          `the lamp test at ${options.intersection} has not ended within ${formatSeconds(boundMs + WAIT_ALLOWANCE_MS)}: see greenwave status and greenwave audit`,
        );
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    process.off("SIGINT", onInterrupt);
    await aborting;
  }
}

const RESULT_WORDS: Record<LampResult["verdict"], string> = {
  ok: "ok",
  "no-current": "NO CURRENT",
  "other-lamp-lit": "OTHER LAMP LIT",
  "not-read": "not read",
};

function resultLine(r: LampResult): string {
  return `${`${r.group} ${LAMP_WORDS[r.lamp]}`.padEnd(16)} ${RESULT_WORDS[r.verdict].padEnd(15)} ${`lit in ${r.lit} of ${r.readings} readbacks`}${r.others.length > 0 ? `; lit too: ${r.others.join(", ")}` : ""}`;
}

/** The report as a table, one row per lamp, with what to do for the lamps that are not ok. */
export function lampTestTable(intersection: string, report: LampTestReport): string {
  const header = `${"LAMP".padEnd(16)} ${"RESULT".padEnd(15)} READBACK`;
  const rows = report.results.map(resultLine);
  const untested = report.channels - report.results.length;
  const bad = report.results.filter((r) => r.verdict !== "ok");
  const advice = [
    ...(bad.some((r) => r.verdict === "no-current")
      ? ["NO CURRENT: check the lamp (or LED module), its load switch and the field wiring of that channel."]
      : []),
    ...(bad.some((r) => r.verdict === "other-lamp-lit")
      ? [
          "OTHER LAMP LIT: a crossed or stuck channel; check the wiring against the intersection file's channels.",
        ]
      : []),
    ...(bad.some((r) => r.verdict === "not-read")
      ? ["not read: no readback came (a module without lamp feedback cannot tell)."]
      : []),
  ];
  return [
    "",
    `lamp test at ${intersection}: ${report.message}`,
    header,
    ...rows,
    ...(untested > 0 ? [`(${untested} lamp${untested === 1 ? "" : "s"} not tested)`] : []),
    ...advice,
    "",
  ].join("\n");
}
