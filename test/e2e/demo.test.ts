import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { cleanupProcesses, cli, start, stop } from "./processes.js";

const CLI = "dist/gateway/cli/main.js";

beforeAll(() => {
  if (!existsSync(CLI)) {
    const build = spawnSync("npx", ["tsc", "-p", "tsconfig.build.json"], {
      encoding: "utf8",
      timeout: 120_000,
    });
    if (build.status !== 0) throw new Error(`build failed: ${build.stdout}${build.stderr}`);
  }
}, 180_000);

describe("npm start (greenwave demo)", () => {
  it("runs the example corridor: start-up flash, all-red, then every intersection sequencing its plan", () => {
    const run = spawnSync(
      "node",
      [CLI, "demo", "--duration", "18", "--port", "0", "--http-port", "0", "--console-port", "0"],
      {
        encoding: "utf8",
        // At info level the gateways log every cycle and mode change: lines the console must show readably.
        env: { ...process.env, GREENWAVE_LOG_LEVEL: "info" },
        // 18 s of demo (the 10 s start-up and its entry into the cycle, with room for a loaded machine's
        // slow process starts), then a clean stop: at most elm's walk, pedestrian clearance and red clearance.
        timeout: 60_000,
      },
    );
    expect(run.status, run.stderr).toBe(0);
    const out = run.stdout;
    for (const id of ["elm", "oak", "pine", "cedar"]) {
      expect(out).toMatch(new RegExp(`${id}\\s+startup\\s+off-peak\\s+.*M:r\\*`));
      expect(out).toMatch(new RegExp(`${id}\\s+mode startup -> (transition|coordinated)`));
    }
    // After 10 s elm enters the stage its clock says (main: Main St green, pedestrians crossing Elm Ave
    // walk; or side: Elm Ave green, pedestrians crossing Main St walk), in step from its first cycle.
    expect(out).toMatch(
      /elm\s+coordinated\s+off-peak\s+(main\s+M:G\s+S:r\s+PS:W\s+PM:dw|side\s+M:r\s+S:G\s+PS:dw\s+PM:W)/,
    );
    // The end of --duration is a clean stop: every intersection's last lamps are all-red, reached
    // through its clearances (a green followed by red with no yellow would be a cut).
    expect(out).toContain("stopping: every intersection ends its intervals");
    for (const id of ["elm", "oak", "pine", "cedar"]) {
      const lamps = out.split("\n").filter((l) => l.includes(` ${id} `) && l.includes(" M:"));
      const last = lamps.at(-1) ?? "";
      expect(last).toMatch(/ stopping /);
      expect(last, last).not.toMatch(/:(G|Y|W)/);
    }
    expect(out).toContain("demo stopped");
    // The gateways' logs are on the console in the demo's own one-line form, never as raw JSON.
    const lines = out.split("\n");
    expect(lines.filter((l) => /^\s*[{[]/.test(l))).toEqual([]);
    for (const id of ["elm", "oak", "pine", "cedar"]) {
      expect(out).toMatch(new RegExp(`\\d+\\.\\ds ${id}\\s+INFO  connected to the broker`));
      // A start-up enters the cycle where the clock puts it, and says so; one that ends at the
      // cycle's offset point (within the in-step tolerance) simply begins the cycle there, in step.
      expect(out).toMatch(
        new RegExp(
          `${id}\\s+(entered the cycle of off-peak at stage \\S+, where the clock puts it: in step|cycle of off-peak started [^\\n]*, in step\\))`,
        ),
      );
    }
  }, 70_000);

  it("stops cleanly on Ctrl-C", async () => {
    const child = spawn("node", [CLI, "demo", "--port", "0", "--http-port", "0", "--console-port", "0"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    await new Promise<void>((ready) => {
      const poll = setInterval(() => {
        if (out.includes("startup")) {
          clearInterval(poll);
          ready();
        }
      }, 50);
    });
    child.kill("SIGINT");
    const code = await new Promise<number | null>((done) => child.on("exit", (c) => done(c)));
    expect(code).toBe(0);
    expect(out).toContain("demo stopped");
  }, 30_000);
});

afterEach(() => cleanupProcesses());

describe("npm start: the demo corridor on the embedded broker", () => {
  it("runs 4 gateways with their simulated modules; status, fault reset, metrics and health answer; Ctrl-C stops it", async () => {
    // The corridor's clocks at a weekday midday (off-peak by its schedule), whatever the time now.
    const midday = "2026-12-01T11:00:00+01:00";
    const demo = start([
      ...[
        "demo",
        "--port",
        "0",
        "--http-port",
        "0",
        "--console-port",
        "0",
        "--quiet",
        "--clock-start",
        midday,
      ],
    ]);
    await until("the demo to be up", 20_000, () => demo.out.includes("legend:"));
    // npm start commits the corridor's schedule as it starts, through the commit protocol.
    await until("the schedule to be committed", 20_000, () =>
      /schedule main-street-weekly v1 committed/.test(demo.out),
    );
    const broker = /broker\s+(mqtt:\/\/127\.0\.0\.1:\d+)/.exec(demo.out)?.[1] as string;
    expect(broker).toBeTruthy();
    expect(demo.out).toContain(`npx greenwave status --broker ${broker}`);
    // The simulated modules send random vehicles and presses to the detector inputs by default (issue 18).
    expect(demo.out).toMatch(/detectors {3}random arrivals: 240 vehicles\/h at each loop, 60 presses\/h/);
    const controls = [...demo.out.matchAll(/simulator\s+\S+ (http:\/\/\S+\/state)/g)].map(
      (m) => m[1] as string,
    );
    expect(controls).toHaveLength(4);
    let arrivals = 0;
    for (const deadline = performance.now() + 60_000; arrivals === 0 && performance.now() < deadline;) {
      for (const url of controls) {
        const state = (await (await fetch(url)).json()) as {
          arrivals?: { arrivals: number; presses: number };
        };
        arrivals += (state.arrivals?.arrivals ?? 0) + (state.arrivals?.presses ?? 0);
      }
      if (arrivals === 0) await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(
      arrivals,
      "vehicles or presses at the four modules' detector inputs within a minute",
    ).toBeGreaterThan(0);
    // An open broker says plainly what it means on this machine (issue 20, item 7).
    expect(demo.out).toContain(
      "open: no passwords, so anyone on this machine may command every intersection",
    );

    // The schedule governs a few seconds after its commit (its transaction's instant): then the status says so.
    const report = await until("every intersection to run by the schedule", 30_000, () => {
      const status = cli(["status", "--broker", broker, "--json"]);
      expect(status.status, status.stderr).toBe(0);
      const shown = JSON.parse(status.stdout) as {
        corridor: null;
        intersections: (Record<string, unknown> & { schedule?: { reason?: string } | null })[];
      };
      return shown.intersections.every((i) => i.schedule?.reason === "scheduled") ? shown : null;
    });
    expect(report.intersections.map((i) => i.id)).toEqual(["elm", "oak", "pine", "cedar"]);
    for (const i of report.intersections) {
      expect(i).toMatchObject({
        corridor: "main-street",
        online: true,
        plan: { id: "off-peak", version: 1 },
        fault: null,
        lock: null,
        lastTxn: { outcome: "committed" },
        schedule: {
          id: "main-street-weekly",
          version: 1,
          reason: "scheduled",
          dayPlan: "weekday",
          action: "off-peak",
        },
      });
      expect(["startup", "transition", "coordinated"]).toContain(i.mode);
    }
    // Once every intersection runs its plan (start-up takes 10 s), the status says where in its cycle.
    const cycles = await until("every intersection's first cycle", 30_000, () => {
      const run = cli(["status", "--broker", broker, "--json"]);
      const shown = JSON.parse(run.stdout) as { intersections: { cycle: Record<string, unknown> | null }[] };
      return shown.intersections.every((i) => i.cycle) ? shown.intersections.map((i) => i.cycle) : null;
    });
    for (const cycle of cycles) {
      expect(cycle).toMatchObject({ stage: expect.any(String), lengthMs: expect.any(Number) });
      expect(typeof cycle?.offsetErrorMs).toBe("number");
      expect(typeof cycle?.inStep).toBe("boolean");
      expect(cycle?.second).toBeGreaterThanOrEqual(0);
    }
    const table = cli(["status", "--broker", broker, "--corridor", "main-street"]);
    expect(table.stdout).toMatch(
      /^corridor main-street\nINTERSECTION\s+MODE\s+PLAN\s+STAGE\s+CYCLE\s+OFFSET\s+IN STEP\s+FAULT\n/,
    );
    for (const id of ["elm", "oak", "pine", "cedar"])
      expect(table.stdout).toMatch(
        new RegExp(
          `\\n${id}\\s+(transition|coordinated)\\s+off-peak v1\\s+[a-z]+\\s+\\d+/\\d+ s\\s+(\\d+\\.\\d s (late|early)|0\\.0 s)\\s+(yes|no)\\s+-\\n`,
        ),
      );
    for (const line of table.stdout.split("\n")) expect(line.length).toBeLessThanOrEqual(100);

    // A transaction id nobody knows is an error, not a quiet success (a typo must not look done).
    const unknown = cli(
      ["txn", "resolve", "--corridor", "main-street", "--txn", "no-such-txn", "--outcome", "aborted"].concat([
        "--by",
        "alice",
        "--broker",
        broker,
      ]),
    );
    expect(unknown.status, unknown.stdout).toBe(1);
    expect(unknown.stderr).toContain("none reports it as its last transaction");

    const reset = cli(["fault", "reset", "--intersection", "oak", "--by", "alice", "--broker", broker]);
    expect(reset.status, reset.stderr).toBe(0);
    expect(reset.stdout).toContain("oak: no fault was latched");

    const metricsUrl = /elm\s+metrics (http:\/\/\S+\/metrics)/.exec(demo.out)?.[1] as string;
    const metrics = await (await fetch(metricsUrl)).text();
    expect(metrics).toMatch(/greenwave_ticks_total\{intersection="elm"\} [1-9]/);
    expect(metrics).toMatch(/greenwave_mqtt_connected\{intersection="elm"\} 1/);
    expect(metrics).toMatch(
      /greenwave_modbus_exchange_seconds_count\{intersection="elm",device="io1"\} [1-9]/,
    );
    expect(metrics).toMatch(/greenwave_plan_in_force\{plan="off-peak",version="1",intersection="elm"\} 1/);
    // The stage is "none" during start-up.
    expect(metrics).toMatch(/greenwave_stage\{stage="[a-z-]+",intersection="elm"\} 1/);
    expect(metrics).toMatch(/greenwave_offset_error_seconds\{intersection="elm"\} -?[0-9.e-]+/);
    expect(metrics).toMatch(/greenwave_in_step\{intersection="elm"\} [01]/);
    // Where elm is in its cycle (absent outside coordinated operation: the families are there).
    expect(metrics).toContain("# TYPE greenwave_cycle_second gauge");
    expect(metrics).toContain("# TYPE greenwave_cycle_length_seconds gauge");
    const health = await fetch(metricsUrl.replace("/metrics", "/healthz"));
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ healthy: true, intersection: "elm", mqtt: "connected" });

    expect(await stop(demo)).toBe(0);
    expect(demo.out).toContain("demo stopped");
  }, 90_000);

  it("says which port is taken instead of crashing", async () => {
    const first = start(["demo", "--port", "0", "--http-port", "0", "--console-port", "0", "--quiet"]);
    await until("the first demo", 20_000, () => first.out.includes("legend:"));
    const port = /127\.0\.0\.1:(\d+) \(embedded/.exec(first.out)?.[1] as string;
    const second = cli(["demo", "--port", port, "--console-port", "0", "--duration", "2"]);
    expect(second.status).toBe(1);
    expect(second.stderr).toContain(`127.0.0.1:${port}: the port is in use`);
    expect(second.stderr).toContain("--port");
    expect(second.stderr).not.toContain("    at ");
  }, 40_000);
});
