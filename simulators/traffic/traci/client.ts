/**
 * The TraCI client: the socket shell around codec.ts. One request in flight at a time (TraCI answers in
 * order on one connection, and a reply says nothing about which request it answers): calls made while
 * one is out wait their turn in a bounded queue. Every request has a timeout; a reply over the size bound
 * is refused before it is buffered. After a timeout, an oversized or malformed reply, or a broken
 * connection, the connection's state is unknown (a late reply would be taken for the next one's), so the
 * client is done: it closes the socket and every later call fails with the first error's cause.
 */
import { Socket, connect as netConnect } from "node:net";
import {
  COMMAND,
  type Context,
  type Expectation,
  MESSAGE_HEADER_BYTES,
  VARIABLE,
  type VehicleData,
  announcedLength,
  closeCommand,
  decodeReply,
  decodeVariableResponse,
  decodeVehicleData,
  decodeVersion,
  encodeMessage,
  expectType,
  getVariableCommand,
  getVersionCommand,
  responseIdOf,
  setOrderCommand,
  setVariableCommand,
  simulationStepCommand,
  type TraciValue,
} from "./codec.js";
import { TraciError, describeCommand } from "./errors.js";

export interface TraciConnectOptions {
  /** Loopback unless told otherwise. */
  host?: string;
  /** How long one command may wait for its reply (ms, default 10 000). */
  timeoutMs?: number;
  /** How long to keep retrying the connection while SUMO starts (ms, default 10 000). */
  connectWithinMs?: number;
  /** The largest reply accepted (bytes, default 16 MiB). */
  maxReplyBytes?: number;
  /** Stops the connect retries early (startSumo aborts when the process exits). */
  signal?: AbortSignal;
  /** Appended to connection errors: what is known about the other side (startSumo: SUMO's exit and stderr). */
  describePeer?: () => string;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_CONNECT_WITHIN_MS = 10_000;
const DEFAULT_MAX_REPLY_BYTES = 16 * 1024 * 1024;
/** Calls waiting behind the one in flight; past this a call is refused (a caller not awaiting its calls). */
const MAX_QUEUED = 64;
/** The close command's reply is awaited at most this long: closing must not hang on a stuck SUMO. */
const CLOSE_TIMEOUT_MS = 2_000;
const STATE_PATTERN = /^[rRgGyYoOus]+$/;
/** Traffic lights whose link count is remembered (a corridor has a handful; the bound keeps a misuse small). */
const MAX_KNOWN_LIGHTS = 1024;
/** SUMO counts time in whole milliseconds: times closer than half of one are the same. */
const TIME_EPSILON_S = 0.0005;
const RETRY_FIRST_MS = 20;
const RETRY_MAX_MS = 250;

interface Pending {
  readonly expected: readonly Expectation[];
  readonly resolve: (results: (Uint8Array | null)[]) => void;
  readonly reject: (error: TraciError) => void;
  readonly timer: NodeJS.Timeout;
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });

const ctxOf = (command: string, objectId?: string): Context =>
  objectId === undefined ? { command } : { command, objectId };

export class TraciClient {
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private announced: number | null = null;
  private pending: Pending | null = null;
  private tail: Promise<unknown> = Promise.resolve();
  private queued = 0;
  /** Set once the connection is unusable; every later call fails with it. */
  private broken: TraciError | null = null;
  private closing: Promise<void> | null = null;
  /** SUMO's step length (s), once asked; and its time (s) as of the last reply that told it, for stepWith. */
  private deltaTS: number | null = null;
  private timeS: number | null = null;
  /** Links per traffic light (the length of its state), learned at the first state set. */
  private readonly linkCounts = new Map<string, number>();

  private constructor(
    private readonly socket: Socket,
    private readonly timeoutMs: number,
    private readonly maxReplyBytes: number,
    private readonly describePeer: () => string,
  ) {
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (e) => this.fail(this.connectionError("the connection failed", e)));
    socket.on("close", () => this.fail(this.connectionError("SUMO closed the connection")));
  }

  /**
   * Connects to SUMO's TraCI port, retrying (connection refused: SUMO is still loading its network)
   * until `connectWithinMs` has passed or `signal` aborts.
   */
  static async connect(port: number, options: TraciConnectOptions = {}): Promise<TraciClient> {
    const host = options.host ?? "127.0.0.1";
    const within = options.connectWithinMs ?? DEFAULT_CONNECT_WITHIN_MS;
    const deadline = Date.now() + within;
    const peer = options.describePeer ?? (() => "");
    let wait = RETRY_FIRST_MS;
    let attempts = 0;
    for (;;) {
      attempts++;
      try {
        const socket = await openSocket(host, port, Math.max(1, deadline - Date.now()), options.signal);
        return new TraciClient(
          socket,
          options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
          options.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES,
          peer,
        );
      } catch (e) {
        const stop = options.signal?.aborted === true || Date.now() + wait >= deadline;
        if (stop) {
          const why = options.signal?.aborted === true ? "gave up" : `not within ${within} ms`;
          throw new TraciError(
            `cannot connect to SUMO's TraCI port ${host}:${port} (${why}, ${attempts} attempts): ${(e as Error).message}${suffix(peer())}`,
            { kind: "connection", command: "connect" },
            { cause: e },
          );
        }
        await sleep(wait, options.signal);
        wait = Math.min(RETRY_MAX_MS, wait * 2);
      }
    }
  }

  // --- commands ----------------------------------------------------------------------------------

  async getVersion(): Promise<{ apiVersion: number; identifier: string }> {
    const ctx = ctxOf("getVersion");
    const [content] = await this.request(
      [getVersionCommand()],
      [{ ...ctx, commandId: COMMAND.getVersion, responseId: COMMAND.getVersion }],
    );
    return decodeVersion(content as Uint8Array, ctx);
  }

  async setOrder(order: number): Promise<void> {
    await this.request(
      [setOrderCommand(order)],
      [{ command: "setOrder", commandId: COMMAND.setOrder, responseId: null }],
    );
  }

  /** Advances SUMO to targetTimeS (0: one step). Subscription results, if any, are read and dropped. */
  async simulationStep(targetTimeS = 0): Promise<void> {
    this.timeS = null;
    await this.request([simulationStepCommand(targetTimeS)], [stepExpectation()]);
  }

  /** The simulation time (s). */
  async simulationTime(): Promise<number> {
    const timeS = await this.getNumber(
      COMMAND.getSimulationVariable,
      VARIABLE.simulationTime,
      "",
      "simulationTime",
      "double",
    );
    this.timeS = timeS;
    return timeS;
  }

  /** Vehicles still to come or running. */
  async minExpectedNumber(): Promise<number> {
    return this.getNumber(
      COMMAND.getSimulationVariable,
      VARIABLE.minExpectedNumber,
      "",
      "minExpectedNumber",
      "int",
    );
  }

  /**
   * setRedYellowGreenState: one character per link index of the traffic light (r, y, g, G, s, u, o, O).
   * SUMO 1.15 takes a state of the wrong length without a word (links past its end keep no state), so
   * the client checks it: the first state set for a light asks SUMO for its current state (one round
   * trip, once per light) and remembers its length.
   */
  async trafficLightSetState(tlsId: string, state: string): Promise<void> {
    await this.checkStates(new Map([[tlsId, state]]));
    await this.request([setStateCommand(tlsId, state)], [setStateExpectation(tlsId)]);
  }

  /** Refuses states SUMO would take silently and misapply: unknown characters, a wrong length. */
  private async checkStates(states: ReadonlyMap<string, string>): Promise<void> {
    for (const [tlsId, state] of states) {
      if (!STATE_PATTERN.test(state))
        throw new TraciError(
          `trafficLightSetState on '${tlsId}': state "${state}" is not a string of r, y, g, G, s, u, o, O (one per link)`,
          { kind: "invalid", command: "trafficLightSetState", objectId: tlsId },
        );
      let links = this.linkCounts.get(tlsId);
      if (links === undefined) {
        if (this.linkCounts.size >= MAX_KNOWN_LIGHTS) this.linkCounts.clear();
        links = (await this.trafficLightGetState(tlsId)).length;
        this.linkCounts.set(tlsId, links);
      }
      if (state.length !== links)
        throw new TraciError(
          `trafficLightSetState on '${tlsId}': state "${state}" has ${state.length} characters, the light controls ${links} links`,
          { kind: "invalid", command: "trafficLightSetState", objectId: tlsId },
        );
    }
  }

  async trafficLightGetState(tlsId: string): Promise<string> {
    const value = await this.get(
      COMMAND.getTrafficLightVariable,
      VARIABLE.trafficLightState,
      tlsId,
      "trafficLightGetState",
    );
    return expectType(value, "string", ctxOf("trafficLightGetState", tlsId));
  }

  async trafficLightIds(): Promise<string[]> {
    const value = await this.get(
      COMMAND.getTrafficLightVariable,
      VARIABLE.idList,
      "",
      "trafficLightIds",
      false,
    );
    return [...expectType(value, "stringList", ctxOf("trafficLightIds"))];
  }

  async inductionLoopIds(): Promise<string[]> {
    const value = await this.get(
      COMMAND.getInductionLoopVariable,
      VARIABLE.idList,
      "",
      "inductionLoopIds",
      false,
    );
    return [...expectType(value, "stringList", ctxOf("inductionLoopIds"))];
  }

  /** Vehicles on the loop during the last step. */
  async inductionLoopVehicleCount(loopId: string): Promise<number> {
    return this.getNumber(
      COMMAND.getInductionLoopVariable,
      VARIABLE.loopLastStepVehicleNumber,
      loopId,
      "inductionLoopVehicleCount",
      "int",
    );
  }

  /** The vehicles on the loop during the last step; leaveTimeS is -1 while one is still on it. */
  async inductionLoopVehicleData(loopId: string): Promise<VehicleData[]> {
    const value = await this.get(
      COMMAND.getInductionLoopVariable,
      VARIABLE.loopVehicleData,
      loopId,
      "inductionLoopVehicleData",
    );
    return decodeVehicleData(value, ctxOf("inductionLoopVehicleData", loopId));
  }

  /**
   * Sets the traffic lights' states (in the map's order), then advances to targetTimeS (0: one step):
   * in ONE TraCI message and one round trip when that is at most one step, the traffic run's case.
   *
   * SUMO (1.15) answers every command of a message before the step's own answer, but when a step
   * command runs more than one simulation step it drops those earlier answers, a refused state among
   * them. So a target further than one step ahead goes as two messages: the states (all answered),
   * then the step. To tell which case it is, the client keeps SUMO's step length (asked once) and its
   * time: each one-step message also asks the time, which SUMO answers before stepping.
   *
   * A state the client can tell is wrong (characters, length) fails the call before anything is sent.
   * A state SUMO refuses fails it naming that traffic light; SUMO still ran the other commands of the
   * message, the step included. Await each call before the next (the client keeps SUMO's time).
   */
  async stepWith(states: ReadonlyMap<string, string>, targetTimeS: number): Promise<void> {
    await this.checkStates(states);
    if (this.timeS === null || this.deltaTS === null) await this.syncTime();
    const now = this.timeS as number;
    const deltaT = this.deltaTS as number;
    const commands: Uint8Array[] = [];
    const expected: Expectation[] = [];
    for (const [tlsId, state] of states) {
      commands.push(setStateCommand(tlsId, state));
      expected.push(setStateExpectation(tlsId));
    }
    // How far the target is: reached already, one step (sent as "one step", so that SUMO's own rounding
    // of the target cannot make it two), or more.
    const reach =
      targetTimeS === 0
        ? "one"
        : targetTimeS <= now + TIME_EPSILON_S
          ? "none"
          : targetTimeS <= now + deltaT + TIME_EPSILON_S
            ? "one"
            : "more";
    if (reach === "none") {
      if (commands.length > 0) await this.request(commands, expected);
      return;
    }
    commands.push(getVariableCommand(COMMAND.getSimulationVariable, VARIABLE.simulationTime, ""));
    expected.push(timeExpectation());
    if (reach === "one") {
      commands.push(simulationStepCommand(0));
      expected.push(stepExpectation());
    }
    this.timeS = null; // unknown until this reply says it
    const results = await this.request(commands, expected);
    const before = expectType(
      decodeVariableResponse(results[states.size] as Uint8Array, VARIABLE.simulationTime, timeExpectation()),
      "double",
      timeExpectation(),
    );
    if (reach === "one") {
      this.timeS = before + deltaT;
      return;
    }
    await this.simulationStep(targetTimeS);
  }

  /** SUMO's step length and time, for stepWith: one round trip, after a step to a target time. */
  private async syncTime(): Promise<void> {
    const ctx = ctxOf("stepWith (time and step length)");
    const [deltaT, time] = await this.request(
      [
        getVariableCommand(COMMAND.getSimulationVariable, VARIABLE.deltaT, ""),
        getVariableCommand(COMMAND.getSimulationVariable, VARIABLE.simulationTime, ""),
      ],
      [
        {
          ...ctx,
          commandId: COMMAND.getSimulationVariable,
          responseId: responseIdOf(COMMAND.getSimulationVariable),
        },
        {
          ...ctx,
          commandId: COMMAND.getSimulationVariable,
          responseId: responseIdOf(COMMAND.getSimulationVariable),
        },
      ],
    );
    const deltaTS = expectType(
      decodeVariableResponse(deltaT as Uint8Array, VARIABLE.deltaT, ctx),
      "double",
      ctx,
    );
    if (!(deltaTS > 0))
      throw new TraciError(`SUMO reports a step length of ${deltaTS} s`, {
        kind: "malformed",
        command: ctx.command,
      });
    this.deltaTS = deltaTS;
    this.timeS = expectType(
      decodeVariableResponse(time as Uint8Array, VARIABLE.simulationTime, ctx),
      "double",
      ctx,
    );
  }

  /**
   * The close command (SUMO ends the simulation and exits), then the socket. Idempotent, and it does not
   * throw: closing an already broken connection just releases the socket.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.broken === null) {
        try {
          await this.request(
            [closeCommand()],
            [{ command: "close", commandId: COMMAND.close, responseId: null }],
            CLOSE_TIMEOUT_MS,
          );
        } catch {
          // Nothing to do about it: the socket goes below either way.
        }
      }
      this.fail(new TraciError("the TraCI client is closed", { kind: "connection", command: "close" }));
      await new Promise<void>((resolve) => {
        if (this.socket.destroyed) resolve();
        else this.socket.once("close", () => resolve()).destroy();
      });
    })();
    return this.closing;
  }

  /** Whether the connection is still usable. */
  get isOpen(): boolean {
    return this.broken === null;
  }

  // --- the exchange --------------------------------------------------------------------------------

  private async get(
    commandId: number,
    variable: number,
    objectId: string,
    command: string,
    namesObject = true,
  ): Promise<TraciValue> {
    const ctx = namesObject ? ctxOf(command, objectId) : ctxOf(command);
    const [content] = await this.request(
      [getVariableCommand(commandId, variable, objectId)],
      [{ ...ctx, commandId, responseId: responseIdOf(commandId) }],
    );
    return decodeVariableResponse(content as Uint8Array, variable, ctx);
  }

  private async getNumber(
    commandId: number,
    variable: number,
    objectId: string,
    command: string,
    type: "int" | "double",
  ): Promise<number> {
    const namesObject = objectId !== "";
    const value = await this.get(commandId, variable, objectId, command, namesObject);
    return expectType(value, type, namesObject ? ctxOf(command, objectId) : ctxOf(command));
  }

  /** Queues one message; resolves with the response contents once its whole reply has been checked. */
  private request(
    commands: readonly Uint8Array[],
    expected: readonly Expectation[],
    timeoutMs = this.timeoutMs,
  ): Promise<(Uint8Array | null)[]> {
    const first = expected[0] as Expectation;
    if (this.queued >= MAX_QUEUED)
      return Promise.reject(
        new TraciError(
          `TraCI ${describeCommand(first.command, first.objectId)}: ${MAX_QUEUED} calls already waiting (await each call)`,
          {
            kind: "connection",
            command: first.command,
            ...(first.objectId === undefined ? {} : { objectId: first.objectId }),
          },
        ),
      );
    this.queued++;
    const run = (): Promise<(Uint8Array | null)[]> => this.exchange(commands, expected, timeoutMs);
    const result = this.tail.then(run, run).finally(() => {
      this.queued--;
    });
    this.tail = result.catch(() => undefined);
    return result;
  }

  private exchange(
    commands: readonly Uint8Array[],
    expected: readonly Expectation[],
    timeoutMs: number,
  ): Promise<(Uint8Array | null)[]> {
    const first = expected[0] as Expectation;
    if (this.broken !== null) return Promise.reject(this.unusable(first));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(
          new TraciError(
            `TraCI ${describeCommand(first.command, first.objectId)}${expected.length > 1 ? ` (and ${expected.length - 1} more in the message)` : ""}: no reply within ${timeoutMs} ms${suffix(this.describePeer())}`,
            {
              kind: "timeout",
              command: first.command,
              ...(first.objectId === undefined ? {} : { objectId: first.objectId }),
            },
          ),
        );
      }, timeoutMs);
      this.pending = { expected, resolve, reject, timer };
      this.socket.write(encodeMessage(commands));
    });
  }

  private onData(chunk: Buffer): void {
    if (this.broken !== null) return;
    const pending = this.pending;
    const ctx = pending?.expected[0] ?? ctxOf("(no request)");
    if (pending === null) {
      this.fail(
        new TraciError(`SUMO sent ${chunk.length} bytes with no request waiting`, {
          kind: "malformed",
          command: "(no request)",
        }),
      );
      return;
    }
    this.buffered.push(chunk);
    this.bufferedBytes += chunk.length;
    try {
      if (this.announced === null && this.bufferedBytes >= MESSAGE_HEADER_BYTES) {
        this.announced = announcedLength(this.joined(), this.maxReplyBytes, ctx);
      }
      if (this.announced === null || this.bufferedBytes < this.announced) return;
      const all = this.joined();
      if (all.length > this.announced)
        throw new TraciError(
          `TraCI ${describeCommand(ctx.command, ctx.objectId)}: ${all.length - this.announced} bytes beyond the reply`,
          {
            kind: "malformed",
            command: ctx.command,
            ...(ctx.objectId === undefined ? {} : { objectId: ctx.objectId }),
          },
        );
      this.buffered = [];
      this.bufferedBytes = 0;
      this.announced = null;
      this.pending = null;
      clearTimeout(pending.timer);
      let results: (Uint8Array | null)[];
      try {
        results = decodeReply(all, pending.expected, this.maxReplyBytes);
      } catch (e) {
        // A refusal leaves the connection in step (the whole reply was read); anything else does not.
        if (e instanceof TraciError && e.kind === "refused") pending.reject(e);
        else this.failWith(pending, e);
        return;
      }
      pending.resolve(results);
    } catch (e) {
      this.failWith(pending, e);
    }
  }

  private joined(): Buffer {
    if (this.buffered.length > 1) this.buffered = [Buffer.concat(this.buffered)];
    return this.buffered[0] as Buffer;
  }

  private failWith(pending: Pending, e: unknown): void {
    const error =
      e instanceof TraciError
        ? e
        : new TraciError(`TraCI: ${(e as Error).message}`, {
            kind: "malformed",
            command: pending.expected[0]?.command ?? "?",
          });
    this.pending = pending;
    this.fail(error);
  }

  /** Marks the connection unusable, fails the request in flight with `error`, and drops the socket. */
  private fail(error: TraciError): void {
    if (this.broken !== null) return;
    this.broken = error;
    const pending = this.pending;
    this.pending = null;
    this.buffered = [];
    this.bufferedBytes = 0;
    if (pending !== null) {
      clearTimeout(pending.timer);
      const first = pending.expected[0] as Expectation;
      pending.reject(
        error.kind !== "connection"
          ? error
          : new TraciError(
              `TraCI ${describeCommand(first.command, first.objectId)}: ${error.message}`,
              {
                kind: error.kind,
                command: first.command,
                ...(first.objectId === undefined ? {} : { objectId: first.objectId }),
              },
              { cause: error },
            ),
      );
    }
    this.socket.destroy();
  }

  private connectionError(what: string, cause?: Error): TraciError {
    return new TraciError(
      `${what}${cause ? ` (${cause.message})` : ""}${suffix(this.describePeer())}`,
      { kind: "connection", command: this.pending?.expected[0]?.command ?? "(idle)" },
      cause ? { cause } : undefined,
    );
  }

  private unusable(ctx: Context): TraciError {
    const broken = this.broken as TraciError;
    return new TraciError(
      `TraCI ${describeCommand(ctx.command, ctx.objectId)}: the connection is no longer usable: ${broken.message}`,
      {
        kind: "connection",
        command: ctx.command,
        ...(ctx.objectId === undefined ? {} : { objectId: ctx.objectId }),
      },
      { cause: broken },
    );
  }
}

const suffix = (peer: string): string => (peer === "" ? "" : `; ${peer}`);

const setStateCommand = (tlsId: string, state: string): Uint8Array =>
  setVariableCommand(COMMAND.setTrafficLightVariable, VARIABLE.trafficLightState, tlsId, {
    type: "string",
    value: state,
  });

const setStateExpectation = (tlsId: string): Expectation => ({
  command: "trafficLightSetState",
  objectId: tlsId,
  commandId: COMMAND.setTrafficLightVariable,
  responseId: null,
});

const timeExpectation = (): Expectation => ({
  command: "stepWith (time)",
  commandId: COMMAND.getSimulationVariable,
  responseId: responseIdOf(COMMAND.getSimulationVariable),
});

const stepExpectation = (): Expectation => ({
  command: "simulationStep",
  commandId: COMMAND.simulationStep,
  responseId: "subscriptions",
});

/** One TCP connection attempt, bounded by `timeoutMs` and `signal`. */
function openSocket(host: string, port: number, timeoutMs: number, signal?: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(new Error("aborted"));
      return;
    }
    const socket = netConnect({ host, port });
    const timer = setTimeout(() => settle(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
    const onAbort = (): void => settle(new Error("aborted"));
    signal?.addEventListener("abort", onAbort, { once: true });
    socket.once("connect", () => settle(null));
    socket.once("error", (e) => settle(e));
    function settle(error: Error | null): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      socket.removeAllListeners("connect");
      socket.removeAllListeners("error");
      if (error === null) resolve(socket);
      else {
        socket.destroy();
        reject(error);
      }
    }
  });
}
