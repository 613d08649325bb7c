import mqtt, { type MqttClient } from "mqtt";
import { type RunningBroker, startBroker } from "../../gateway/broker/broker.js";
import { loadCorridor } from "../../gateway/config/load.js";
import { CorridorModel } from "../../gateway/console/corridor-model.js";
import { type RunningConsole, startConsole } from "../../gateway/console/server.js";
import type { ConsoleSnapshot, IntersectionView } from "../../gateway/console/view.js";
import { eventually } from "./browser.js";

/** The example corridor's topic root, under which a test publishes as its gateways would. */
export const CONSOLE_TOPIC = "greenwave/v1/main-street";

export interface ConsoleFixture {
  readonly broker: RunningBroker;
  readonly web: RunningConsole;
  /** A client publishing the wire's formats by hand. */
  readonly publisher: MqttClient;
  state(): Promise<ConsoleSnapshot>;
  close(): Promise<void>;
}

export const viewOf = (s: ConsoleSnapshot, id: string) =>
  s.intersections.find((i) => i.id === id) as IntersectionView;

/**
 * The web console's server on the example corridor against an embedded broker (aedes on loopback),
 * with a publisher; returned once the console is subscribed (a retained message shows on it).
 */
export async function startConsoleFixture(publisherId: string): Promise<ConsoleFixture> {
  const broker = await startBroker({ host: "127.0.0.1", port: 0, users: null });
  const web = await startConsole({
    model: new CorridorModel(loadCorridor("config/corridor.yaml")),
    broker: { url: broker.url },
    host: "127.0.0.1",
    port: 0,
  });
  const publisher = await mqtt.connectAsync(broker.url, { protocolVersion: 4, clientId: publisherId });
  const state = async () => (await (await fetch(`${web.url}api/state`)).json()) as ConsoleSnapshot;
  await publisher.publishAsync(
    `${CONSOLE_TOPIC}/cedar/availability`,
    JSON.stringify({ v: 1, online: true }),
    {
      qos: 1,
      retain: true,
    },
  );
  await eventually("the console's subscription", 5000, async () => viewOf(await state(), "cedar").online);
  return {
    broker,
    web,
    publisher,
    state,
    close: async () => {
      await publisher.endAsync();
      await web.close();
      await broker.close();
    },
  };
}
