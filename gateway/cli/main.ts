#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { ConfigError } from "../config/errors.js";
import { OperatorError } from "../operator/operator-client.js";
import { StoreError } from "../store/store.js";
import { registerAuditCommand } from "./audit-command.js";
import { registerBrokerCommand } from "./broker.js";
import { registerConfigCommands } from "./config-commands.js";
import { registerDemoCommand } from "./demo.js";
import { registerDoctorCommand } from "./doctor.js";
import { registerEventsCommand } from "./events-command.js";
import { registerFaultCommands } from "./fault-commands.js";
import { registerFlashCommand } from "./flash-command.js";
import { registerGatewayCommand } from "./gateway.js";
import { registerHoldCommand } from "./hold-command.js";
import { registerKeysCommands } from "./keys-command.js";
import { registerLampTestCommand } from "./lamp-test-command.js";
import { packageVersion } from "./package-version.js";
import { registerReleaseCommands } from "./release-commands.js";
import { registerScheduleCommands } from "./schedule-commands.js";
import { registerSchedulePush } from "./schedule-push.js";
import { registerSimCommands } from "./sim.js";
import { registerStatusCommand } from "./status.js";
import { registerTxnCommands } from "./txn-commands.js";
import { PortInUseError } from "./port-in-use.js";
import { UsageError } from "./usage-error.js";

const program = new Command()
  .name("greenwave")
  .description(
    "Runtime for roadside traffic-signal gateways: safe sequencing, Modbus I/O, MQTT peers, atomic corridor plan switches.",
  )
  .version(packageVersion())
  .showHelpAfterError("(run with --help for usage)")
  .exitOverride();

// `greenwave … | head` closes the pipe early: that is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw error;
  });
}

registerConfigCommands(program);
registerScheduleCommands(program, registerSchedulePush);
registerDemoCommand(program);
registerGatewayCommand(program);
registerBrokerCommand(program);
registerStatusCommand(program);
registerTxnCommands(program);
registerFaultCommands(program);
registerFlashCommand(program);
registerHoldCommand(program);
registerLampTestCommand(program);
registerAuditCommand(program);
registerEventsCommand(program);
registerSimCommands(program);
registerReleaseCommands(program);
registerDoctorCommand(program);
registerKeysCommands(program);
(await import("./console.js")).registerConsoleCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? 0 : 2;
  } else if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exitCode = 1;
  } else if (
    error instanceof OperatorError ||
    error instanceof StoreError ||
    error instanceof PortInUseError
  ) {
    process.stderr.write(`greenwave: ${error.message}\n`);
    process.exitCode = 1;
  } else if (error instanceof UsageError) {
    process.stderr.write(`greenwave: ${error.message}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(
      `greenwave: internal error (please report): ${(error as Error).stack ?? String(error)}\n`,
    );
    process.exitCode = 70;
  }
}
