import { EventEmitter } from "node:events";
import { createServer, type Server, type Socket } from "node:net";
import Modbus from "jsmodbus";
import { SerialPort } from "serialport";
import type { SerialSettings } from "../../devices/io-map.js";
import type { ModuleModel } from "./module-model.js";
import { registerRefusal } from "./register-refusal.js";

/**
 * A Modbus slave (TCP or RTU on a serial line) in front of a ModuleModel, built on jsmodbus's server.
 * jsmodbus keeps register images in buffers: they are refreshed from the model before every read, and
 * every write is applied to the model first, so the model is the single truth (stuck relays, watchdog).
 * Between jsmodbus and the wire sits a FaultySocket that injects the faults the model is told to.
 */

type Frame = "rtu" | "tcp";

interface Clock {
  monoMs(): number;
  wallMs(): number;
}

interface SlaveRequest {
  address?: number;
  unitId?: number;
  body: { address: number; quantity?: number; value?: unknown; valuesAsArray?: ArrayLike<number | boolean> };
}

/** Stands in for the socket jsmodbus reads from and writes to. */
class FaultySocket extends EventEmitter {
  constructor(
    private readonly frame: Frame,
    private readonly unitId: number,
    private readonly model: ModuleModel,
    private readonly send: (data: Buffer) => void,
    /** Holding registers this module does not have (register-refusal.ts). */
    private readonly rejected: ReadonlySet<number> = new Set(),
  ) {
    super();
  }

  /** Bytes from the master. A module told not to answer hears nothing at all. */
  deliver(data: Buffer): void {
    if (this.model.faults.noAnswer) return;
    const refusal = registerRefusal(this.frame, data, this.rejected);
    // Through write(): the unit check and the injected faults apply to the exception as to any answer.
    if (refusal) this.write(refusal);
    else this.emit("data", data);
  }

  write(data: Buffer, done?: () => void): boolean {
    done?.();
    const unit = this.frame === "rtu" ? data[0] : data[6];
    if (unit !== this.unitId || this.model.faults.noAnswer) return true;
    const out = Buffer.from(data);
    if (this.model.faults.corruptCrc) {
      // RTU: flip the CRC's last byte. TCP has no CRC: a corrupted frame is lost on the way.
      if (this.frame === "tcp") return true;
      out[out.length - 1] = (out[out.length - 1] as number) ^ 0xff;
    }
    const slow = this.model.faults.slowMs;
    if (slow > 0) setTimeout(() => this.send(out), slow);
    else this.send(out);
    return true;
  }
}

function attachModel(
  server: InstanceType<typeof Modbus.ModbusTCPServer> | InstanceType<typeof Modbus.ModbusRTUServer>,
  model: ModuleModel,
  unitId: number,
  clock: Clock,
): void {
  const { profile } = model;
  const forUs = (request: SlaveRequest) => (request.address ?? request.unitId) === unitId;
  const refresh = () => {
    packBits(server.coils, model.readCoils(profile.firstCoil, profile.outputs), profile.firstCoil);
    const fb = profile.feedback;
    if (fb.source === "discrete-inputs")
      packBits(server.discrete, model.readInputs(fb.firstInput, fb.count), fb.firstInput);
    const holding = server.holding;
    for (let r = 0; r * 2 + 1 < holding.length; r++)
      holding.writeUInt16BE(model.readRegisters(r, 1)[0] ?? 0, r * 2);
  };
  // jsmodbus emits these hooks, but its typings only declare some of them.
  const hooks = server as unknown as EventEmitter;
  hooks.on("preReadCoils", refresh);
  hooks.on("preReadDiscreteInputs", refresh);
  hooks.on("preReadHoldingRegisters", refresh);
  hooks.on("preWriteMultipleCoils", (request: SlaveRequest) => {
    if (!forUs(request)) return;
    const values = Array.from(request.body.valuesAsArray ?? [], (v) => Boolean(v)).slice(
      0,
      request.body.quantity,
    );
    model.writeCoils(request.body.address, values, clock.monoMs(), clock.wallMs());
  });
  hooks.on("preWriteSingleCoil", (request: SlaveRequest) => {
    if (!forUs(request)) return;
    const v = request.body.value;
    model.writeCoils(
      request.body.address,
      [v === true || v === 0xff00 || v === 1],
      clock.monoMs(),
      clock.wallMs(),
    );
  });
  hooks.on("preWriteMultipleRegisters", (request: SlaveRequest) => {
    if (!forUs(request)) return;
    const values = Array.from(request.body.valuesAsArray ?? [], Number);
    model.writeRegisters(request.body.address, values, clock.monoMs());
  });
  hooks.on("preWriteSingleRegister", (request: SlaveRequest) => {
    if (!forUs(request)) return;
    model.writeRegisters(request.body.address, [Number(request.body.value)], clock.monoMs());
  });
}

function packBits(buffer: Buffer, values: readonly boolean[], first: number): void {
  values.forEach((v, i) => {
    const bit = first + i;
    const byte = bit >> 3;
    if (byte >= buffer.length) return;
    const mask = 1 << (bit & 7);
    buffer[byte] = v ? (buffer[byte] as number) | mask : (buffer[byte] as number) & ~mask;
  });
}

function images(model: ModuleModel): { coils: Buffer; discrete: Buffer; holding: Buffer } {
  const { profile } = model;
  const bytesFor = (bits: number) => Math.ceil(bits / 8);
  const fb = profile.feedback;
  const watchdog = profile.watchdog;
  const highestRegister = watchdog
    ? Math.max(watchdog.timeoutRegister, watchdog.safeStateRegister + Math.ceil(profile.outputs / 16))
    : 0;
  return {
    coils: Buffer.alloc(bytesFor(profile.firstCoil + profile.outputs)),
    discrete: Buffer.alloc(fb.source === "discrete-inputs" ? bytesFor(fb.firstInput + fb.count) : 1),
    holding: Buffer.alloc((highestRegister + 1) * 2),
  };
}

export interface RunningSlave {
  readonly description: string;
  /** The TCP port actually bound (for --tcp 0). */
  readonly port: number | null;
  close(): Promise<void>;
}

export function startTcpSlave(
  model: ModuleModel,
  unitId: number,
  host: string,
  port: number,
  clock: Clock,
  rejected: ReadonlySet<number> = new Set(),
): Promise<RunningSlave> {
  const fake = new EventEmitter();
  const server = new Modbus.server.TCP(fake as unknown as Server, images(model));
  attachModel(server, model, unitId, clock);
  const sockets = new Set<Socket>();
  const listener = createServer((socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    const faulty = new FaultySocket(
      "tcp",
      unitId,
      model,
      (data) => {
        if (!socket.destroyed) socket.write(data);
      },
      rejected,
    );
    socket.on("data", (data) => faulty.deliver(data));
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    fake.emit("connection", faulty);
  });
  return new Promise((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(port, host, () => {
      const address = listener.address();
      const bound = typeof address === "object" && address ? address.port : port;
      resolve({
        description: `tcp ${host}:${bound}`,
        port: bound,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            listener.close(() => done());
          }),
      });
    });
  });
}

export function startRtuSlave(
  model: ModuleModel,
  unitId: number,
  path: string,
  serial: SerialSettings,
  clock: Clock,
  rejected: ReadonlySet<number> = new Set(),
): Promise<RunningSlave> {
  const port = new SerialPort({
    path,
    baudRate: serial.baudRate,
    dataBits: serial.dataBits,
    parity: serial.parity,
    stopBits: serial.stopBits,
    autoOpen: false,
  });
  const faulty = new FaultySocket("rtu", unitId, model, (data) => port.write(data), rejected);
  const server = new Modbus.server.RTU(faulty as unknown as SerialPort, images(model));
  attachModel(server, model, unitId, clock);
  port.on("data", (data: Buffer) => faulty.deliver(data));
  port.on("error", () => {
    // A broken line shows as requests that time out at the master.
  });
  return new Promise((resolve, reject) => {
    port.open((error) => {
      if (error) return reject(error);
      const s = serial;
      resolve({
        description: `serial ${path} ${s.baudRate} ${s.dataBits}${s.parity[0]?.toUpperCase()}${s.stopBits}`,
        port: null,
        close: () => new Promise<void>((done) => (port.isOpen ? port.close(() => done()) : done())),
      });
    });
  });
}
