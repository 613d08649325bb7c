import { type ChildProcess, spawn } from "node:child_process";
import { join, resolve } from "node:path";
import { OperatorClient } from "../gateway/operator/operator-client.js";

/** `greenwave gateway` processes for the benchmarks, started and stopped as a user would. */

const CLI = resolve("dist/gateway/cli/main.js");
const ONLINE_TIMEOUT_MS = 60_000;
const EXIT_TIMEOUT_MS = 5000;

/** One gateway process per intersection of a corridor fixture; `nodeArgs` go before the script (e.g. --cpu-prof). */
export function startGatewayProcesses(
  fixture: { readonly dir: string; readonly ids: readonly string[] },
  dataDir: string,
  brokerUrl: string,
  nodeArgs: (id: string) => readonly string[] = () => [],
): ChildProcess[] {
  return fixture.ids.map((id) =>
    spawn(
      "node",
      [
        ...nodeArgs(id),
        CLI,
        "gateway",
        "--config",
        join(fixture.dir, `${id}.yaml`),
        "--data-dir",
        dataDir,
        "--broker",
        brokerUrl,
      ],
      { stdio: "ignore", env: { ...process.env, GREENWAVE_LOG_LEVEL: "warn" } },
    ),
  );
}

/** Waits (at most 60 s) until all `n` gateways of the corridor say they are online and have a status. */
export async function untilOnline(url: string, corridor: string, n: number): Promise<void> {
  const op = await OperatorClient.connect({ url, timeoutMs: 5000 });
  try {
    const deadline = performance.now() + ONLINE_TIMEOUT_MS;
    while (performance.now() < deadline) {
      const views = await op.survey(corridor, { expect: n, quietMs: 200 });
      if (views.filter((v) => v.availability?.online && v.status).length === n) return;
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(`the ${n} gateways did not come online within ${ONLINE_TIMEOUT_MS / 1000} s`);
  } finally {
    await op.close();
  }
}

/** Stops a child with `signal` (as Ctrl-C or a service manager would), and kills it if it has not exited within 5 s. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<boolean>((done) => {
    const timer = setTimeout(() => done(false), EXIT_TIMEOUT_MS);
    child.once("exit", () => {
      clearTimeout(timer);
      done(true);
    });
  });
  child.kill(signal);
  if (!(await exited)) child.kill("SIGKILL");
}
