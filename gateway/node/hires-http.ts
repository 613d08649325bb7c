import { exportText } from "../core/event-log/export-format.js";
import { readExportQuery } from "../core/event-log/export-query.js";
import type { Route, RouteAnswer } from "../shell/http-server.js";
import { nextAfter } from "../store/hires-records.js";
import type { GatewayStore } from "../store/store.js";
import type { HiResLog } from "./hires-log.js";

/**
 * `GET /events?since=&until=&after=&limit=&format=csv|json`: a page of the event log from the store
 * (what is still in memory is written first, so the page holds the newest rows). A full page says
 * where the next one starts in `x-greenwave-next-after`.
 */
export function hiResRoute(
  store: GatewayStore,
  log: HiResLog,
  device: string,
  nowWallMs: () => number,
): Route {
  return (params): RouteAnswer => {
    const read = readExportQuery(
      {
        since: params.get("since"),
        until: params.get("until"),
        after: params.get("after"),
        limit: params.get("limit"),
        format: params.get("format"),
      },
      nowWallMs(),
    );
    if (!read.ok) return { status: 400, contentType: "text/plain", body: `${read.message}\n` };
    log.flush();
    const rows = store.hiResEvents(read.query);
    const next = nextAfter(rows, read.query.limit);
    const headers: Record<string, string> = next === null ? {} : { "x-greenwave-next-after": String(next) };
    return {
      status: 200,
      contentType: read.query.format === "csv" ? "text/csv" : "application/json",
      body: exportText(read.query.format, device, rows),
      headers,
    };
  };
}
