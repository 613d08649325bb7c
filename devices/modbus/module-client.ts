import { classify, ModbusError, type ModbusFailure } from "./errors.js";
import type { BusLink, UnitClient } from "./link.js";

export interface ModuleCounters {
  requests: number;
  ok: number;
  retries: number;
  failures: Record<ModbusFailure, number>;
  /** Duration of the last successful request, ms. */
  lastLatencyMs: number;
}

/** Back-off between retries of one request: short, because a tick is 100 ms. */
const RETRY_BACKOFF_MS = [10, 25, 50] as const;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * One module (one unit id) on a bus: every request through the bus's queue, an explicit timeout,
 * bounded retries with back-off, and counters per failure kind (timeouts, CRC errors, exceptions…).
 */
export class ModuleClient {
  readonly counters: ModuleCounters = {
    requests: 0,
    ok: 0,
    retries: 0,
    failures: { timeout: 0, crc: 0, exception: 0, link: 0, overload: 0, protocol: 0 },
    lastLatencyMs: 0,
  };
  private readonly client: UnitClient;
  readonly where: string;

  constructor(
    readonly link: BusLink,
    readonly deviceId: string,
    readonly unitId: number,
    readonly timeoutMs: number,
    readonly retries: number,
  ) {
    this.client = link.client(unitId, timeoutMs);
    this.where = `device ${deviceId} (unit ${unitId}, ${link.description})`;
  }

  async writeCoils(first: number, values: readonly boolean[]): Promise<void> {
    await this.request(`write coils ${first}–${first + values.length - 1}`, () =>
      this.client.writeMultipleCoils(first, [...values]),
    );
  }

  async writeCoil(address: number, value: boolean): Promise<void> {
    await this.request(`write coil ${address}`, () => this.client.writeSingleCoil(address, value));
  }

  async readCoils(first: number, count: number): Promise<boolean[]> {
    const answer = await this.request(`read coils ${first}–${first + count - 1}`, () =>
      this.client.readCoils(first, count),
    );
    return bits(answer, count);
  }

  async readInputs(first: number, count: number): Promise<boolean[]> {
    const answer = await this.request(`read inputs ${first}–${first + count - 1}`, () =>
      this.client.readDiscreteInputs(first, count),
    );
    return bits(answer, count);
  }

  async writeRegisters(first: number, values: readonly number[]): Promise<void> {
    await this.request(`write registers ${first}–${first + values.length - 1}`, () =>
      this.client.writeMultipleRegisters(first, [...values]),
    );
  }

  async readRegisters(first: number, count: number): Promise<number[]> {
    const answer = await this.request(`read registers ${first}–${first + count - 1}`, () =>
      this.client.readHoldingRegisters(first, count),
    );
    return values(answer).slice(0, count);
  }

  private async request(operation: string, send: () => PromiseLike<unknown>): Promise<unknown> {
    let last: ModbusError | null = null;
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      if (attempt > 0) {
        this.counters.retries++;
        await sleep(Math.max(RETRY_BACKOFF_MS[attempt - 1] ?? 50, this.link.recoveryMs));
      }
      this.counters.requests++;
      const started = performance.now();
      try {
        const answer = await this.link.queue.run(
          async () => {
            if (!this.link.isOpen) throw new ModbusError("link", this.where, operation, "link is down");
            try {
              return await send();
            } catch (error) {
              // Let the bytes of a late answer drain before the next frame on this bus.
              if (this.link.recoveryMs > 0) await sleep(this.link.recoveryMs);
              throw error;
            }
          },
          () =>
            new ModbusError(
              "overload",
              this.where,
              operation,
              `more than ${this.link.queue.limit} requests wait for this bus`,
            ),
        );
        this.counters.ok++;
        this.counters.lastLatencyMs = performance.now() - started;
        return answer;
      } catch (error) {
        last = classify(error, this.where, operation, this.timeoutMs);
        this.counters.failures[last.failure]++;
        // An exception is the device's considered answer, and an overloaded bus will not clear by retrying.
        if (last.failure === "exception" || last.failure === "overload") break;
      }
    }
    throw last as ModbusError;
  }
}

interface Answer {
  response: { body: { valuesAsArray: ArrayLike<number> | ArrayLike<boolean> } };
}

function values(answer: unknown): number[] {
  return Array.from((answer as Answer).response.body.valuesAsArray as ArrayLike<number>, Number);
}

function bits(answer: unknown, count: number): boolean[] {
  return values(answer)
    .slice(0, count)
    .map((v) => v !== 0);
}
