/**
 * The console's page script (runs in the browser; compiled by tsc with the rest of gateway/). It takes
 * the server's snapshot and live updates over server-sent events (/api/stream), draws every
 * intersection in corridor order with its signal heads and facts, and the time-space diagram with
 * Chart.js (served by the console from node_modules). No framework: a card per intersection is built
 * once and its fields updated in place.
 */
import type { BrowserElement, BrowserGlobals, ChartInstance } from "./browser.js";
import type {
  ConsoleCounters,
  ConsoleSnapshot,
  DiagramView,
  IntersectionView,
  RecentEvent,
} from "../view.js";

const { document, EventSource, Chart } = globalThis as unknown as BrowserGlobals;

const intersections = new Map<string, IntersectionView>();
let corridorOrder: string[] = [];
let diagram: DiagramView | null = null;
let chart: ChartInstance | null = null;

function el(tag: string, className = "", text = ""): BrowserElement {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

function byId(id: string): BrowserElement {
  const node = document.getElementById(id);
  if (!node) throw new Error(`the page has no #${id}`);
  return node;
}

const timeOf = (ms: number) => new Date(ms).toISOString().slice(11, 19);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

// ---- intersections ----

function buildCard(view: IntersectionView): BrowserElement {
  const card = el("article", "intersection");
  card.dataset.intersection = view.id;
  const head = el("header");
  head.append(el("h3", "name", view.name), el("span", "where", `${view.id} · ${view.positionM} m`));
  const heads = el("div", "heads");
  for (const group of view.groups) {
    const signal = el("div", `head ${group.kind}`);
    signal.dataset.group = group.id;
    signal.dataset.aspect = "unknown";
    signal.title = `${group.id} (phase ${group.phase})`;
    const lamps =
      group.kind === "vehicle" ? ["lamp red", "lamp yellow", "lamp green"] : ["lamp dontwalk", "lamp walk"];
    for (const lamp of lamps) signal.append(el("span", lamp));
    signal.append(el("span", "name", group.id));
    heads.append(signal);
  }
  const facts = el("dl", "facts");
  for (const [key, label] of [
    ["mode", "mode"],
    ["plan", "plan"],
    ["fault", "fault"],
    ["lock", "lock"],
    ["txn", "last txn"],
    ["clock", "clock"],
    ["cycle", "cycle"],
  ] as const) {
    const value = el("dd", `fact-${key}`);
    value.dataset.fact = key;
    facts.append(el("dt", "", label), value);
  }
  card.append(head, heads, facts, el("ol", "events"));
  return card;
}

function setFact(card: BrowserElement, key: string, text: string, className = ""): void {
  const node = card.querySelector(`[data-fact="${key}"]`);
  if (!node) return;
  node.textContent = text;
  node.className = `fact-${key} ${className}`.trim();
}

function renderIntersection(view: IntersectionView): void {
  const card = document.getElementById(`i-${view.id}`);
  if (!card) return;
  const s = view.status;
  card.dataset.online = view.online === null ? "unknown" : String(view.online);
  card.dataset.mode = s?.mode ?? "unknown";
  card.dataset.fault = s?.fault ? "latched" : "none";
  for (const group of view.groups) {
    const head = card.querySelector(`.head[data-group="${group.id}"]`);
    if (head) head.dataset.aspect = view.aspects?.[group.id] ?? "unknown";
  }
  const mode = s ? s.mode : view.online === false ? "offline" : "waiting for status";
  setFact(
    card,
    "mode",
    view.online === false ? `OFFLINE (${view.offlineReason ?? "no reason"})` : mode,
    "mode",
  );
  const modeNode = card.querySelector('[data-fact="mode"]');
  if (modeNode) modeNode.dataset.mode = s?.mode ?? "unknown";
  setFact(
    card,
    "plan",
    s ? `${s.plan.id} v${s.plan.version}${s.plan.digest ? ` (${s.plan.digest})` : ""}` : "–",
  );
  setFact(
    card,
    "fault",
    s?.fault ? `${s.fault.kind}: ${s.fault.message}` : "none",
    s?.fault ? "fault-text" : "",
  );
  setFact(card, "lock", s?.lock ? `${s.lock.holder} (token ${s.lock.token})` : "free");
  setFact(card, "txn", s?.lastTxn ? `${s.lastTxn.outcome} ${s.lastTxn.id}` : "none");
  setFact(
    card,
    "clock",
    s?.clock
      ? `${s.clock.state} (${s.clock.source}${s.clock.offsetMs === null ? "" : `, ${s.clock.offsetMs} ms`})`
      : "not watched",
  );
  setFact(
    card,
    "cycle",
    s?.cycle
      ? `${s.cycle.stage}, offset ${s.cycle.offsetErrorMs >= 0 ? "+" : ""}${seconds(s.cycle.offsetErrorMs)}${s.cycle.inStep ? ", in step" : ""}`
      : "–",
  );
  const list = card.querySelector("ol.events");
  list?.replaceChildren(...[...view.events].reverse().map(eventItem));
}

function eventItem(event: RecentEvent): BrowserElement {
  const item = el("li");
  item.dataset.source = event.source;
  item.dataset.kind = event.kind;
  const time = el("time", "", timeOf(event.atMs));
  item.append(time, event.text);
  return item;
}

function renderAll(snapshot: ConsoleSnapshot): void {
  byId("corridor-name").textContent = snapshot.corridor.name;
  corridorOrder = snapshot.intersections.map((i) => i.id);
  const row = byId("intersections");
  row.replaceChildren(
    ...snapshot.intersections.map((view) => {
      const card = buildCard(view);
      card.setAttribute("id", `i-${view.id}`);
      return card;
    }),
  );
  for (const view of snapshot.intersections) {
    intersections.set(view.id, view);
    renderIntersection(view);
  }
  setConnection(snapshot.connected);
  renderDiagram(snapshot.diagram);
  renderCounters(snapshot.counters);
}

function setConnection(connected: boolean | null, what = "broker unreachable"): void {
  const badge = byId("connection");
  const state = connected === null ? "connecting" : connected ? "connected" : "disconnected";
  badge.dataset.state = state;
  badge.textContent =
    connected === null ? "connecting…" : connected ? "live" : `${what}: showing the last known state`;
}

function renderCounters(c: ConsoleCounters): void {
  byId("counters").textContent =
    `dropped messages: ${c.malformed} malformed, ${c.tooLarge} too large, ${c.foreign} foreign · ` +
    `event-log rows: ${c.hiresDuplicates} duplicates, ${c.hiresDropped} evicted · ` +
    `live clients: ${c.streamClients} (${c.streamRefused} refused, ${c.streamSlowDropped} too slow)`;
}

// ---- time-space diagram ----

const COLORS = { green: "#2da44e", yellow: "#e3b341", red: "#cf222e", flash: "#fb8f44" } as const;

function siteLine(
  d: DiagramView,
  color: keyof typeof COLORS,
): { label: string; data: ({ x: number; y: number } | { x: number; y: null })[] } {
  const data: ({ x: number; y: number } | { x: number; y: null })[] = [];
  for (const site of d.sites)
    for (const seg of site.segments) {
      if (seg.color !== color) continue;
      data.push(
        { x: seg.startMs, y: site.positionM },
        { x: seg.endMs, y: site.positionM },
        { x: seg.endMs, y: null },
      );
    }
  return { label: color, data };
}

function datasets(d: DiagramView): unknown[] {
  const sets: unknown[] = [];
  const first = d.sites[0]?.positionM ?? 0;
  const last = d.sites[d.sites.length - 1]?.positionM ?? 0;
  const band = (
    b: { departStartMs: number; departEndMs: number },
    from: number,
    to: number,
    fill: string,
    label: string,
  ) => ({
    label,
    data: [
      { x: b.departStartMs, y: from },
      { x: b.departEndMs, y: from },
      { x: b.departEndMs + d.travelMs, y: to },
      { x: b.departStartMs + d.travelMs, y: to },
      { x: b.departStartMs, y: from },
    ],
    showLine: true,
    fill: "shape",
    backgroundColor: fill,
    borderColor: fill.replace(/[\d.]+\)$/, "0.7)"),
    borderWidth: 1,
    pointRadius: 0,
  });
  for (const b of d.forward) sets.push(band(b, first, last, "rgba(45, 164, 78, 0.22)", "forward band"));
  for (const b of d.reverse) sets.push(band(b, last, first, "rgba(9, 105, 218, 0.18)", "reverse band"));
  for (const color of ["red", "yellow", "green", "flash"] as const) {
    const line = siteLine(d, color);
    sets.push({
      ...line,
      showLine: true,
      spanGaps: false,
      borderColor: COLORS[color],
      borderWidth: 7,
      borderCapStyle: "butt",
      borderDash: color === "flash" ? [4, 4] : [],
      pointRadius: 0,
    });
  }
  sets.push({
    label: "pattern change",
    data: d.patternChanges.map((p) => ({ x: p.atMs, y: p.positionM, pattern: p.pattern })),
    pointStyle: "triangle",
    pointRadius: 9,
    backgroundColor: "#8250df",
    borderColor: "#fff",
    showLine: false,
  });
  return sets;
}

interface DrawContext {
  save(): void;
  restore(): void;
  fillText(text: string, x: number, y: number): void;
  font: string;
  fillStyle: string;
}

/** Writes "P<n>" beside each pattern-change marker. */
const patternLabels = {
  id: "patternLabels",
  afterDatasetsDraw(c: {
    ctx: DrawContext;
    scales: Record<string, { getPixelForValue(v: number): number }>;
  }) {
    if (!diagram) return;
    const { x, y } = c.scales;
    if (!x || !y) return;
    c.ctx.save();
    c.ctx.font = "bold 11px system-ui, sans-serif";
    c.ctx.fillStyle = "#8250df";
    for (const p of diagram.patternChanges)
      c.ctx.fillText(
        `pattern ${p.pattern}`,
        x.getPixelForValue(p.atMs) + 8,
        y.getPixelForValue(p.positionM) - 10,
      );
    c.ctx.restore();
  },
};

function chartOptions(d: DiagramView): Record<string, unknown> {
  const positions = d.sites.map((s) => s.positionM);
  const top = Math.max(...positions, 0);
  return {
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    parsing: true,
    normalized: true,
    plugins: {
      legend: { display: false },
      tooltip: { enabled: false },
    },
    scales: {
      x: {
        type: "linear",
        min: d.fromMs,
        max: d.toMs,
        title: { display: true, text: "time (gateway clock, UTC)" },
        ticks: { callback: (value: number) => timeOf(value), maxRotation: 0, autoSkipPadding: 12 },
      },
      y: {
        type: "linear",
        min: -Math.max(20, top * 0.04),
        max: top + Math.max(20, top * 0.04),
        title: { display: true, text: "distance along the corridor (m)" },
        afterBuildTicks: (scale: { ticks: { value: number }[] }) => {
          scale.ticks = d.sites.map((s) => ({ value: s.positionM }));
        },
        ticks: {
          callback: (value: number) => {
            const site = d.sites.find((s) => s.positionM === value);
            return site ? `${site.id} ${value} m` : "";
          },
        },
      },
    },
  };
}

function renderDiagram(d: DiagramView): void {
  diagram = d;
  const first = d.sites[0]?.id ?? "";
  const last = d.sites[d.sites.length - 1]?.id ?? "";
  const speed = `${((d.speedMps * 3600) / 1000).toFixed(0)} km/h`;
  const width = (ms: number | null) => (ms === null ? "no complete band yet" : seconds(ms));
  const bandwidth = byId("bandwidth");
  bandwidth.dataset.forwardMs = d.forwardWidthMs === null ? "" : String(Math.round(d.forwardWidthMs));
  bandwidth.dataset.reverseMs = d.reverseWidthMs === null ? "" : String(Math.round(d.reverseWidthMs));
  bandwidth.dataset.bands = String(d.forward.length + d.reverse.length);
  bandwidth.textContent =
    `Bandwidth at ${speed}, newest band: ${first} → ${last} ${width(d.forwardWidthMs)}, ${last} → ${first} ${width(d.reverseWidthMs)}` +
    (d.design
      ? ` · plan ${d.design.planId} by design: ${seconds(d.design.forwardMs)} / ${seconds(d.design.reverseMs)}, efficiency ${(d.design.efficiency * 100).toFixed(0)} %`
      : "");
  byId("diagram-window").textContent =
    `last ${d.cycles} cycles of ${seconds(d.cycleMs)}: through groups ${d.sites.map((s) => `${s.id} ${s.throughGroup ?? "?"} (phase ${s.phase ?? "?"})`).join(", ")}`;
  const patterns = byId("patterns");
  patterns.dataset.count = String(d.patternChanges.length);
  patterns.textContent =
    d.patternChanges.length === 0
      ? "No pattern change (event 131) in the window."
      : `Pattern changes (event 131): ${d.patternChanges.map((p) => `${timeOf(p.atMs)} ${p.intersection} → pattern ${p.pattern}`).join(", ")}`;
  if (!chart) {
    chart = new Chart(byId("diagram"), {
      type: "scatter",
      data: { datasets: datasets(d) },
      options: chartOptions(d),
      plugins: [patternLabels],
    });
  } else {
    chart.data.datasets = datasets(d);
    chart.options = chartOptions(d);
    chart.update("none");
  }
}

// ---- the live stream ----

function connect(): void {
  const source = new EventSource("/api/stream");
  source.addEventListener("snapshot", (e) => renderAll(JSON.parse(e.data) as ConsoleSnapshot));
  source.addEventListener("intersection", (e) => {
    const view = JSON.parse(e.data) as IntersectionView;
    if (!corridorOrder.includes(view.id)) return;
    intersections.set(view.id, view);
    renderIntersection(view);
  });
  source.addEventListener("diagram", (e) => renderDiagram(JSON.parse(e.data) as DiagramView));
  source.addEventListener("counters", (e) => renderCounters(JSON.parse(e.data) as ConsoleCounters));
  source.addEventListener("connection", (e) =>
    setConnection((JSON.parse(e.data) as { connected: boolean }).connected),
  );
  // EventSource reconnects by itself; the snapshot it then receives replaces everything shown.
  source.onerror = () => setConnection(false, "console server unreachable, reconnecting");
}

/** For the browser tests and the curious: what the page shows, as data. */
(globalThis as unknown as { greenwaveConsole: unknown }).greenwaveConsole = {
  intersections: () => corridorOrder.map((id) => intersections.get(id)),
  diagram: () => diagram,
  datasets: () => chart?.data.datasets ?? [],
};

connect();
