/**
 * What went wrong in a Modbus exchange, so that callers can count and react by kind. "invalid-answer":
 * something answered, but not as a Modbus device answers this request (wrong transaction or unit id,
 * function code, byte count or length, a write not echoed, the request itself echoed back).
 */
export type ModbusFailure =
  "timeout" | "crc" | "exception" | "link" | "overload" | "protocol" | "invalid-answer";

export const MODBUS_FAILURES: readonly ModbusFailure[] = [
  "timeout",
  "crc",
  "exception",
  "link",
  "overload",
  "protocol",
  "invalid-answer",
];

export class ModbusError extends Error {
  override readonly name = "ModbusError";
  constructor(
    readonly failure: ModbusFailure,
    /** "device io1 (unit 1, tcp 127.0.0.1:1502)" */
    readonly where: string,
    /** "write coils 0–31" */
    readonly operation: string,
    /**
     * What happened, without where and operation: "no answer within 250 ms"; for an invalid answer,
     * what the answer did: "echoed the request: 00 01 …".
     */
    readonly detail: string,
    readonly exceptionCode?: number,
  ) {
    super(
      failure === "invalid-answer"
        ? `${where}: the answer to ${operation} ${detail}`
        : `${where}: ${operation}: ${detail}`,
    );
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
