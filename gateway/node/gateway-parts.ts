import type { IntersectionSetup } from "../config/load.js";
import type { Status } from "../protocol/messages.js";
import type { IntersectionTopics } from "../protocol/topics.js";
import type { Clock } from "../shell/clock.js";
import type { IntersectionRunner } from "../shell/intersection-runner.js";
import type { Logger } from "../shell/log.js";
import type { GatewayMetrics } from "../shell/metrics.js";
import type { GatewayStore } from "../store/store.js";
import type { AuditTrail } from "./audit-trail.js";
import type { BrokerLink } from "./broker-link.js";
import type { GatewayBus } from "./gateway-bus.js";
import type { InboundRouter } from "./inbound-router.js";

import type { CorridorSettings } from "./corridor-participant.js";
import type { BrokerSettings } from "./broker-link.js";
import type { Display } from "./runner-hooks.js";
import type { ServiceManagerLink } from "./service-feature.js";
import type { ReadClockSync } from "./clock-watch.js";

export interface GatewayNodeOptions {
  readonly setup: IntersectionSetup;
  readonly store: GatewayStore;
  readonly clock: Clock;
  readonly log: Logger;
  readonly tickMs?: number;
  /** null: no broker at all (the signal side runs the same). */
  readonly broker: BrokerSettings | null;
  /** null: no HTTP endpoint. */
  readonly http: { readonly host: string; readonly port: number } | null;
  readonly corridor?: CorridorSettings;
  /** Extra observers of the signal side (the demo's display). */
  readonly display?: Display;
  /** The installed release and its last upgrade, for the status (absent: not an installed gateway). */
  readonly release?: Status["release"];
  /** Asks the time service whether the clock is synchronised (absent: not watched, e.g. the demo). */
  readonly readClockSync?: ReadClockSync;
  /** Run as a systemd service: READY, STATUS, watchdog pings, STOPPING. */
  readonly service?: ServiceManagerLink;
  /** More features, registered after the built-in ones (each gets the gateway's parts). */
  readonly features?: readonly ((parts: GatewayParts) => void)[];
}

/**
 * What every feature of a gateway may use: its configuration, store, clock and log, the controller's
 * runner, the bus it hears the gateway on, the audit trail, the metrics, and — with a broker — the link
 * and the router that hands it what it registered for. A new feature takes these and registers itself.
 */
export interface GatewayParts {
  readonly setup: IntersectionSetup;
  readonly ids: { readonly corridor: string; readonly intersection: string };
  readonly topics: IntersectionTopics;
  readonly store: GatewayStore;
  readonly clock: Clock;
  readonly log: Logger;
  readonly runner: IntersectionRunner;
  readonly bus: GatewayBus;
  readonly audit: AuditTrail;
  readonly metrics: GatewayMetrics;
  readonly link: BrokerLink | null;
  readonly router: InboundRouter | null;
}
