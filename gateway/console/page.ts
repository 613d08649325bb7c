/**
 * The console's page and style sheet. They are served from these strings (and its script compiled by tsc
 * beside this file), so that the build and the field package carry them with the rest of dist/.
 */

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function pageHtml(corridorName: string): string {
  const name = escapeHtml(corridorName);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>greenwave console: ${name}</title>
<link rel="stylesheet" href="/console.css">
<script src="/vendor/chart.umd.min.js" defer></script>
<script type="module" src="/console.js"></script>
</head>
<body>
<header class="top">
  <h1>greenwave <span id="corridor-name">${name}</span></h1>
  <span id="connection" class="badge" data-state="connecting">connecting…</span>
  <span class="badge readonly" title="The console only reads the corridor's topics: it sends no commands.">read-only</span>
</header>
<main>
  <section id="intersections" aria-label="Intersections in corridor order"></section>
  <section class="panel" aria-label="Time-space diagram">
    <h2>Time-space diagram <small id="diagram-window"></small></h2>
    <p id="bandwidth" class="bandwidth"></p>
    <div class="chart-box"><canvas id="diagram" role="img" aria-label="Time-space diagram: distance along the corridor over time, each intersection's through group, the progression bands"></canvas></div>
    <p id="patterns" class="patterns"></p>
  </section>
</main>
<footer id="counters" class="counters"></footer>
</body>
</html>
`;
}

export const PAGE_CSS = `
:root { color-scheme: light; --bg: #f4f5f7; --card: #fff; --ink: #1b1f24; --muted: #5b6470; --line: #d8dce2; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.35 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--ink); }
header.top { display: flex; gap: .75rem; align-items: center; padding: .6rem 1rem; background: #1b1f24; color: #fff; }
header.top h1 { font-size: 1.1rem; margin: 0; font-weight: 600; }
.badge { font-size: .75rem; padding: .15rem .5rem; border-radius: 1rem; background: #444c56; }
.badge[data-state="connected"] { background: #1f7a35; }
.badge[data-state="disconnected"] { background: #b42318; }
main { padding: .75rem 1rem; display: grid; gap: .75rem; }
#intersections { display: grid; grid-template-columns: repeat(auto-fit, minmax(230px, 1fr)); gap: .75rem; }
.intersection { background: var(--card); border: 1px solid var(--line); border-radius: .5rem; padding: .6rem .7rem; position: relative; }
.intersection[data-fault="latched"] { border: 2px solid #b42318; box-shadow: 0 0 0 3px #fde2e0; }
.intersection[data-online="false"] { opacity: .6; }
.intersection h3 { margin: 0; font-size: .95rem; }
.intersection .where { color: var(--muted); font-size: .75rem; }
.heads { display: flex; flex-wrap: wrap; gap: .45rem; margin: .5rem 0; }
.head { display: flex; flex-direction: column; align-items: center; gap: 3px; background: #22262b; padding: 4px; border-radius: 5px; }
.head .lamp { width: 16px; height: 16px; border-radius: 50%; background: #3a3f45; }
.head .name { color: #fff; font-size: .65rem; }
.head[data-aspect="red"] .red, .head[data-aspect="red-flash"] .red { background: #ff3b30; }
.head[data-aspect="yellow"] .yellow, .head[data-aspect="yellow-flash"] .yellow { background: #ffcc00; }
.head[data-aspect="green"] .green { background: #34c759; }
.head[data-aspect="dont-walk"] .dontwalk, .head[data-aspect="ped-clearance"] .dontwalk { background: #ff8c1a; }
.head[data-aspect="walk"] .walk { background: #f2f2f2; }
.head[data-aspect="red-flash"] .red, .head[data-aspect="yellow-flash"] .yellow, .head[data-aspect="ped-clearance"] .dontwalk { animation: blink 1.09s step-end infinite; }
.head[data-aspect="unknown"] { opacity: .4; }
@keyframes blink { 50% { background: #3a3f45; } }
dl.facts { display: grid; grid-template-columns: auto 1fr; gap: .1rem .6rem; margin: .3rem 0; font-size: .8rem; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.mode { font-weight: 600; }
.mode[data-mode="coordinated"] { color: #1f7a35; }
.mode[data-mode="transition"] { color: #9a6700; }
.mode[data-mode="hold"] { color: #0a58ca; }
.mode[data-mode="fault"], .fault-text { color: #b42318; font-weight: 600; }
ol.events { list-style: none; padding: 0; margin: .3rem 0 0; max-height: 9.5rem; overflow: auto; font-size: .72rem; border-top: 1px solid var(--line); }
ol.events li { padding: .1rem 0; border-bottom: 1px dotted var(--line); }
ol.events time { color: var(--muted); margin-right: .35rem; font-variant-numeric: tabular-nums; }
ol.events li[data-source="hires"] { color: #5a3e99; }
.panel { background: var(--card); border: 1px solid var(--line); border-radius: .5rem; padding: .6rem .8rem; }
.panel h2 { font-size: 1rem; margin: 0 0 .3rem; }
.panel h2 small { color: var(--muted); font-weight: normal; }
.bandwidth, .patterns { margin: .2rem 0; font-size: .85rem; }
.chart-box { position: relative; height: min(55vh, 440px); }
.counters { color: var(--muted); font-size: .72rem; padding: 0 1rem 1rem; }
`;
