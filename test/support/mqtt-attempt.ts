import mqtt, { type IClientOptions, type MqttClient } from "mqtt";

/** How one connection attempt ended. */
export type Attempt =
  | { kind: "connected"; client: MqttClient }
  /** A CONNACK refusal: its return code (4 bad user name or password, 5 not authorised). */
  | { kind: "refused"; code: number }
  /** Closed, reset or a TLS alert before any CONNACK: a refusal at the TLS level. */
  | { kind: "closed"; message: string };

/** One MQTT 3.1.1 connection attempt, no retries, bounded in time (4 s). */
export function attempt(url: string, options: IClientOptions): Promise<Attempt> {
  return new Promise((resolve) => {
    const client = mqtt.connect(url, {
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 3000,
      ...options,
    });
    let done = false;
    const finish = (outcome: Attempt) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (outcome.kind !== "connected") client.end(true);
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ kind: "closed", message: "no answer within 4 s" }), 4000);
    client.on("connect", () => finish({ kind: "connected", client }));
    client.on("error", (error: Error & { code?: unknown }) =>
      typeof error.code === "number"
        ? finish({ kind: "refused", code: error.code })
        : finish({ kind: "closed", message: `${String(error.code)}: ${error.message}` }),
    );
    client.on("close", () => finish({ kind: "closed", message: "connection closed" }));
  });
}
