import { hex } from "./answer-check.js";
import type { Exchange } from "./answer-guard.js";
import { classify, MODBUS_FAILURES, ModbusError, type ModbusFailure } from "./errors.js";
import type { BusLink, UnitChannel, UnitClient } from "./link.js";

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
 * One module (one unit id) on a bus: every request through the bus's queue, every answer checked by
 * the link's guard before it is believed, an explicit timeout, bounded retries with back-off, and
 * counters per failure kind (timeouts, CRC errors, exceptions, invalid answers…).
 */
export class ModuleClient {
  readonly counters: ModuleCounters = {
    requests: 0,
    ok: 0,
    retries: 0,
    failures: Object.fromEntries(MODBUS_FAILURES.map((kind) => [kind, 0])) as Record<ModbusFailure, number>,
    lastLatencyMs: 0,
  };
  private readonly channel: UnitChannel;
  readonly where: string;

  constructor(
    readonly link: BusLink,
    readonly deviceId: string,
    readonly unitId: number,
    readonly timeoutMs: number,
    readonly retries: number,
  ) {
    this.channel = link.unit(unitId, timeoutMs);
    this.where = `device ${deviceId} (unit ${unitId}, ${link.description})`;
  }

  async writeCoils(first: number, values: readonly boolean[]): Promise<void> {
    await this.request(`write coils ${first}–${first + values.length - 1}`, (c) =>
      c.writeMultipleCoils(first, [...values]),
    );
  }

  async writeCoil(address: number, value: boolean): Promise<void> {
    await this.request(`write coil ${address}`, (c) => c.writeSingleCoil(address, value));
  }

  async readCoils(first: number, count: number): Promise<boolean[]> {
    const values = await this.request(
      `read coils ${first}–${first + count - 1}`,
      (c) => c.readCoils(first, count),
      count,
    );
    return bits(values);
  }

  async readInputs(first: number, count: number): Promise<boolean[]> {
    const values = await this.request(
      `read inputs ${first}–${first + count - 1}`,
      (c) => c.readDiscreteInputs(first, count),
      count,
    );
    return bits(values);
  }

  async writeRegisters(first: number, values: readonly number[]): Promise<void> {
    await this.request(`write registers ${first}–${first + values.length - 1}`, (c) =>
      c.writeMultipleRegisters(first, [...values]),
    );
  }

  async readRegisters(first: number, count: number): Promise<number[]> {
    return this.request(
      `read registers ${first}–${first + count - 1}`,
      (c) => c.readHoldingRegisters(first, count),
      count,
    );
  }

  /**
   * One request, retried; a read's answer (count > 0) must carry at least `count` values, which are
   * returned. Writes pass no count and get [].
   */
  private async request(
    operation: string,
    send: (client: UnitClient) => PromiseLike<unknown>,
    count = 0,
  ): Promise<number[]> {
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
          () => this.exchange(operation, send),
          () =>
            new ModbusError(
              "overload",
              this.where,
              operation,
              `more than ${this.link.queue.limit} requests wait for this bus`,
            ),
        );
        const values = count > 0 ? this.valuesOf(answer, count, operation) : [];
        this.counters.ok++;
        this.counters.lastLatencyMs = performance.now() - started;
        return values;
      } catch (error) {
        last = classify(error, this.where, operation, this.timeoutMs);
        this.counters.failures[last.failure]++;
        // An exception is the device's considered answer, and an overloaded bus will not clear by retrying.
        if (last.failure === "exception" || last.failure === "overload") break;
      }
    }
    throw last as ModbusError;
  }

  /** One request on the bus, its answer checked by the link's guard. Runs in the bus's queue. */
  private async exchange(
    operation: string,
    send: (client: UnitClient) => PromiseLike<unknown>,
  ): Promise<unknown> {
    if (!this.link.isOpen) throw new ModbusError("link", this.where, operation, this.link.downReason);
    const exchange = this.link.guard.begin(this.channel.port);
    try {
      return await send(this.channel.client);
    } catch (error) {
      const failure = this.explain(error, exchange, operation);
      this.link.guard.end(exchange);
      // Let the bytes of a late answer drain before the next frame on this bus.
      if (this.link.recoveryMs > 0) await sleep(this.link.recoveryMs);
      throw failure;
    } finally {
      this.link.guard.end(exchange);
    }
  }

  /** The real cause of a failed request: what the guard refused, or jsmodbus's error with what came. */
  private explain(error: unknown, exchange: Exchange, operation: string): ModbusError {
    if (exchange.refusal)
      return new ModbusError(exchange.refusal.failure, this.where, operation, exchange.refusal.detail);
    const failure = classify(error, this.where, operation, this.timeoutMs);
    const unanswered = exchange.unanswered;
    if (failure.failure !== "timeout" || unanswered.length === 0) return failure;
    return new ModbusError(
      "timeout",
      this.where,
      operation,
      `no answer within ${this.timeoutMs} ms; ${unanswered.length} bytes came that are no answer to it: ${hex(unanswered)}`,
    );
  }

  /** The values of a read answer; the guard has checked its byte count, this is the last line. */
  private valuesOf(answer: unknown, count: number, operation: string): number[] {
    const values = Array.from((answer as Answer).response.body.valuesAsArray as ArrayLike<number>, Number);
    if (values.length < count)
      throw new ModbusError(
        "invalid-answer",
        this.where,
        operation,
        `${values.length} values for ${count} asked`,
      );
    return values.slice(0, count);
  }
}

interface Answer {
  response: { body: { valuesAsArray: ArrayLike<number> | ArrayLike<boolean> } };
}

function bits(values: readonly number[]): boolean[] {
  return values.map((v) => v !== 0);
}
