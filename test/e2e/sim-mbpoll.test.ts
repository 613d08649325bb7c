import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { openPtyPair, type PtyPair } from "../support/pty-pair.js";
import { hasTool } from "../support/tools.js";
import { buildOnce, CLI } from "./cli.js";

/**
 * The simulator must be a faithful Modbus slave: Debian's mbpoll, a master nobody here wrote, reads and
 * writes it over TCP and over RTU.
 */

interface Listening {
  modbusPort: number | null;
  control: string | null;
}

const children: ChildProcess[] = [];
const ptys: PtyPair[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
  }
  for (const pty of ptys.splice(0)) await pty.close();
});

beforeAll(buildOnce, 180_000);

function startSim(args: string[]): Promise<Listening> {
  const child = spawn("node", [CLI, "sim", "io-module", ...args, "--control", "0"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n").find((l) => l.includes('"listening"'));
      if (line) resolve(JSON.parse(line) as Listening);
    });
    child.once("exit", (code) => reject(new Error(`simulator exited with ${code}: ${out}`)));
  });
}

function mbpoll(args: string[]): { status: number | null; out: string } {
  const run = spawnSync("mbpoll", args, { encoding: "utf8", timeout: 10_000 });
  return { status: run.status, out: `${run.stdout}${run.stderr}` };
}

/** mbpoll prints polled values as "[ref]: \tvalue". */
function values(out: string): number[] {
  return [...out.matchAll(/^\[\d+\]:\s+(-?\d+)/gm)].map((m) => Number(m[1]));
}

const haveMbpoll = hasTool("mbpoll", "the test of the simulator against a standard Modbus master");
const haveSocat = haveMbpoll && hasTool("socat", "the mbpoll test over RTU (pseudo-terminal pair)");

describe.runIf(haveMbpoll)("the I/O-module simulator under mbpoll", () => {
  const cases: [string, () => Promise<{ target: string[]; sim: Listening }>][] = [
    [
      "TCP",
      async () => {
        const sim = await startSim(["--tcp", "0"]);
        return { sim, target: ["-m", "tcp", "-p", String(sim.modbusPort), "127.0.0.1"] };
      },
    ],
  ];
  if (haveSocat) {
    cases.push([
      "RTU over a pty pair",
      async () => {
        const pty = await openPtyPair();
        ptys.push(pty);
        const sim = await startSim(["--serial", pty.a]);
        return { sim, target: ["-m", "rtu", "-b", "9600", "-P", "none", "-d", "8", "-s", "1", pty.b] };
      },
    ]);
  }

  it.each(cases)(
    "over %s: writes and reads coils, reads lamp inputs and holding registers, ignores other units",
    async (_, start) => {
      const { sim, target } = await start();
      const dev = target.at(-1) as string;
      const opts = target.slice(0, -1);
      const write = mbpoll([
        ...opts,
        "-a",
        "1",
        "-t",
        "0",
        "-r",
        "1",
        dev,
        "1",
        "0",
        "1",
        "1",
        "0",
        "0",
        "0",
        "1",
      ]);
      expect(write.status, write.out).toBe(0);
      expect(write.out).toContain("Written 8 references");
      const coils = mbpoll([...opts, "-a", "1", "-t", "0", "-r", "1", "-c", "8", "-1", dev]);
      expect(values(coils.out)).toEqual([1, 0, 1, 1, 0, 0, 0, 1]);
      const inputs = mbpoll([...opts, "-a", "1", "-t", "1", "-r", "1", "-c", "8", "-1", dev]);
      expect(values(inputs.out)).toEqual([1, 0, 1, 1, 0, 0, 0, 1]);
      // The host watchdog's timeout register (0x0100, mbpoll reference 257), in units of 100 ms.
      const arm = mbpoll([...opts, "-a", "1", "-t", "4", "-r", "257", dev, "10"]);
      expect(arm.status, arm.out).toBe(0);
      const register = mbpoll([...opts, "-a", "1", "-t", "4", "-r", "257", "-c", "1", "-1", dev]);
      expect(values(register.out)).toEqual([10]);
      const state = (await (await fetch(`${sim.control}/state`)).json()) as {
        watchdog: { timeoutMs: number };
        coils: string;
      };
      expect(state.watchdog.timeoutMs).toBe(1000);
      expect(state.coils.slice(0, 8)).toBe("10110001");
      const otherUnit = mbpoll([...opts, "-a", "2", "-t", "0", "-r", "1", "-c", "8", "-1", "-o", "0.3", dev]);
      expect(otherUnit.status).not.toBe(0);
      expect(values(otherUnit.out)).toEqual([]);
    },
    30_000,
  );
});
