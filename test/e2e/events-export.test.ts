import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { IndianaCode } from "../../gateway/core/event-log/indiana.js";
import { type HiResBatch, hiResBatchSchema } from "../../gateway/protocol/messages.js";
import { type GroupId, readHistory, runsOf } from "../support/lamp-history.js";
import { buildOnce } from "./cli.js";
import { cleanupProcesses, cli, dirs, startDemoCorridor, stop } from "./processes.js";

beforeAll(() => buildOnce(), 180_000);
afterEach(() => cleanupProcesses());

interface CsvRow {
  readonly atMs: number;
  readonly device: string;
  readonly code: number;
  readonly param: number;
}

function parseCsv(text: string): CsvRow[] {
  const [header, ...lines] = text.trim().split("\n");
  expect(header).toBe("TimeStamp,DeviceId,EventId,Parameter");
  return lines.map((line) => {
    const [at, device, code, param] = line.split(",");
    return {
      atMs: Date.parse(at as string),
      device: device as string,
      code: Number(code),
      param: Number(param),
    };
  });
}

/** The fixture's groups in file order: the event log numbers them 1, 2, 3, 4 (no `phases` in its files). */
const PHASE: Record<GroupId, number> = { M: 1, S: 2, PS: 3, PM: 4 };

/** Polls an asynchronous probe (until() takes synchronous ones) every 500 ms. */
async function eventually(
  what: string,
  timeoutMs: number,
  probe: () => Promise<boolean | null>,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await probe())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

describe("the high-resolution event log of a demo run", () => {
  it("agrees with the simulated module's lamp history (every green and walk start within 0.1 s), over HTTP, MQTT and from the store", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "greenwave-events-"));
    dirs.push(dataDir);
    const { demo, broker } = await startDemoCorridor({ intersections: 2, flags: ["--data-dir", dataDir] });
    const control = /simulator\s+x1\/io1 (http:\/\/\S+)\/state/.exec(demo.out)?.[1] as string;
    const http = /x1\s+metrics (http:\/\/\S+)\/metrics/.exec(demo.out)?.[1] as string;
    expect([broker, control, http].every(Boolean), demo.out).toBe(true);

    // A central collector: every live batch on x1's hires topic, checked against the schema.
    const batches: HiResBatch[] = [];
    const collector = await mqtt.connectAsync(broker, { reconnectPeriod: 0 });
    await collector.subscribeAsync("greenwave/v1/test-corridor/x1/hires");
    collector.on("message", (_topic, payload) => {
      batches.push(hiResBatchSchema.parse(JSON.parse(payload.toString())));
    });

    // Start-up (5 s), then more than a whole 30 s cycle: every group has had its green or walk.
    await eventually("a whole cycle at x1", 60_000, async () => {
      const rows = await (await fetch(`${http}/events?format=json`)).json();
      return (
        (rows as { code: number; param: number }[]).filter(
          (r) => r.code === IndianaCode.PHASE_BEGIN_GREEN && r.param === PHASE.M,
        ).length >= 2
      );
    });
    const history = await readHistory(control);

    const csv = await fetch(`${http}/events`);
    expect(csv.headers.get("content-type")).toBe("text/csv");
    const rows = parseCsv(await csv.text());
    expect(new Set(rows.map((r) => r.device))).toEqual(new Set(["x1"]));
    const lastRowAt = rows.at(-1)?.atMs ?? 0;
    for (const group of ["M", "S", "PS", "PM"] as GroupId[]) {
      const go = group.startsWith("P") ? "W" : "G";
      const code = go === "W" ? IndianaCode.PEDESTRIAN_BEGIN_WALK : IndianaCode.PHASE_BEGIN_GREEN;
      const starts = runsOf(history, group)
        .filter((run) => run.lamp === go && run.from <= lastRowAt)
        .map((run) => run.from);
      expect(starts.length, `${group}'s starts in the module's history`).toBeGreaterThanOrEqual(1);
      const logged = rows.filter((r) => r.code === code && r.param === PHASE[group]).map((r) => r.atMs);
      for (const t of starts) {
        const nearest = Math.min(...logged.map((at) => Math.abs(at - t)));
        expect(
          nearest,
          `${group} ${go} began at ${new Date(t).toISOString()} on the module; log: ${logged.map((a) => new Date(a).toISOString()).join(", ")}`,
        ).toBeLessThanOrEqual(100);
      }
      // And no begin-green the module never showed.
      expect(logged.filter((at) => at <= (history.at(-1)?.t ?? 0) - 200).length).toBeLessThanOrEqual(
        starts.length,
      );
    }
    // Start-up: power restored, start-up flash, out of flash, the plan (pattern, cycle 30 s, offset).
    expect(rows.slice(0, 3).map((r) => [r.code, r.param])).toEqual([
      [IndianaCode.POWER_RESTORED, 0],
      [IndianaCode.UNIT_FLASH_STATUS_CHANGE, 7],
      [IndianaCode.UNIT_FLASH_STATUS_CHANGE, 2],
    ]);
    expect(rows.find((r) => r.code === IndianaCode.CYCLE_LENGTH_CHANGE)?.param).toBe(30);

    // The live topic carried the same rows as the store, by sequence number.
    const stored = (await (await fetch(`${http}/events?format=json`)).json()) as {
      seq: number;
      code: number;
    }[];
    const live = new Map(batches.flatMap((b) => b.events).map((e) => [e.seq, e]));
    const storedSince = stored.filter((r) => r.seq >= Math.min(...live.keys()));
    expect(storedSince.length).toBeGreaterThan(10);
    for (const row of storedSince.slice(0, -5))
      expect(live.get(row.seq)?.code, `seq ${row.seq}`).toBe(row.code);
    expect(Object.keys(batches.at(-1)?.aspects ?? {}).sort()).toEqual(["M", "PM", "PS", "S"]);

    // The operator's export over MQTT: the same rows as HTTP.
    const overMqtt = cli([
      "events",
      "export",
      "--intersection",
      "x1",
      "--broker",
      broker,
      "--until",
      new Date(lastRowAt + 50).toISOString(),
    ]);
    expect(overMqtt.status, overMqtt.stderr).toBe(0);
    expect(parseCsv(overMqtt.stdout)).toEqual(rows);
    await collector.endAsync();

    // After a clean stop, the store at the cabinet has every row, the stop (182) last.
    expect(await stop(demo)).toBe(0);
    const atCabinet = cli([
      "events",
      "export",
      "--intersection",
      "x1",
      "--data-dir",
      dataDir,
      "--format",
      "json",
    ]);
    expect(atCabinet.status, atCabinet.stderr).toBe(0);
    const all = JSON.parse(atCabinet.stdout) as { code: number; name: string; timestamp: string }[];
    expect(all.length).toBeGreaterThan(rows.length);
    expect(all.at(-1)).toMatchObject({
      code: IndianaCode.POWER_FAILURE_DETECTED,
      name: "power failure detected",
    });
    // Bad input is a usage error that says what to write, never a stack trace.
    const bad = cli([
      "events",
      "export",
      "--intersection",
      "x1",
      "--data-dir",
      dataDir,
      "--since",
      "yesterday",
    ]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/since must be an ISO time/);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    const unknown = cli(["events", "export", "--intersection", "x9", "--data-dir", dataDir]);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/no gateway data for intersection x9 .*found: x1, x2/);
  }, 150_000);
});
