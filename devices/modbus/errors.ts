/** What went wrong in a Modbus exchange, so that callers can count and react by kind. */
export type ModbusFailure = "timeout" | "crc" | "exception" | "link" | "overload" | "protocol";

export class ModbusError extends Error {
  override readonly name = "ModbusError";
  constructor(
    readonly failure: ModbusFailure,
    /** "device io1 (unit 1, tcp 127.0.0.1:1502)" */
    readonly where: string,
    /** "write coils 0–31" */
    readonly operation: string,
    detail: string,
    readonly exceptionCode?: number,
  ) {
    super(`${where}: ${operation}: ${detail}`);
  }
}

interface JsModbusError {
  err?: string;
  message?: string;
  response?: { body?: { code?: number } };
}

/** Maps jsmodbus's UserRequestError codes (and socket errors) onto our failure kinds. */
export function classify(error: unknown, where: string, operation: string, timeoutMs: number): ModbusError {
  if (error instanceof ModbusError) return error;
  const e = error as JsModbusError;
  switch (e?.err) {
    case "Timeout":
      return new ModbusError("timeout", where, operation, `no answer within ${timeoutMs} ms`);
    case "crcMismatch":
      return new ModbusError(
        "crc",
        where,
        operation,
        "answer failed its CRC check (line noise, wrong baud rate or parity?)",
      );
    case "ModbusException": {
      const code = e.response?.body?.code;
      return new ModbusError(
        "exception",
        where,
        operation,
        `device answered with exception ${code}: ${e.message}`,
        code,
      );
    }
    case "Offline":
      return new ModbusError("link", where, operation, "link is down");
    case "OutOfSync":
    case "Protocol":
    case "ManuallyCleared":
      return new ModbusError("protocol", where, operation, e.message ?? String(e.err));
    default:
      return new ModbusError("link", where, operation, (error as Error)?.message ?? String(error));
  }
}
