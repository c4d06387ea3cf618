"""The status page's style and scripts, inline (no build step, no CDN: the
page works offline and under a strict Content-Security-Policy)."""

from __future__ import annotations

__all__ = ["CSP", "EXECUTION_SCRIPT", "LIST_SCRIPT", "PAGE_CSS"]

#: Only this page's own inline style and script; data only from its own origin.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:; form-action 'self'; frame-ancestors 'none'"
)

PAGE_CSS = """
:root { --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --bg: #fff; --head: #f6f7f9;
  --ok: #157347; --bad: #b42318; --run: #175cd3; --wait: #8a6d00; --off: #667085; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--fg); background: var(--bg); }
header { display: flex; align-items: baseline; gap: 1rem; padding: .8rem 1.5rem;
  border-bottom: 1px solid var(--line); background: var(--head); }
header h1 { font-size: 1.1rem; margin: 0; }
header a { color: inherit; text-decoration: none; }
header .live { margin-left: auto; color: var(--muted); font-size: .85rem; }
main { padding: 1rem 1.5rem 3rem; max-width: 1200px; }
nav.filters { display: flex; flex-wrap: wrap; gap: .4rem; margin: .2rem 0 1rem; }
nav.filters a { padding: .15rem .6rem; border: 1px solid var(--line); border-radius: 1rem;
  color: var(--fg); text-decoration: none; }
nav.filters a.on { background: var(--fg); color: #fff; border-color: var(--fg); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: .8rem; text-transform: uppercase; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85rem; }
td.out { max-width: 28rem; overflow-wrap: anywhere; color: var(--muted); }
.status { display: inline-block; padding: 0 .5rem; border-radius: .7rem; font-size: .8rem;
  font-weight: 600; border: 1px solid currentColor; white-space: nowrap; }
.st-succeeded, .st-cached { color: var(--ok); }
.st-failed, .st-timed_out { color: var(--bad); }
.st-running { color: var(--run); }
.st-pending { color: var(--wait); }
.st-cancelled, .st-skipped { color: var(--off); }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0 0 1rem; }
.meta dt { color: var(--muted); }
.meta dd { margin: 0; }
.error { color: var(--bad); white-space: pre-wrap; }
.empty { color: var(--muted); padding: 1rem 0; }
h2 { font-size: 1rem; margin: 1.5rem 0 .5rem; }
svg.graph { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; }
svg.graph rect { fill: #fff; stroke: currentColor; stroke-width: 1.5; }
svg.graph text { fill: var(--fg); font-size: 12px; }
svg.graph path { fill: none; stroke: #98a2b3; stroke-width: 1.2; }
form.login { display: flex; gap: .5rem; margin-top: 1rem; }
form.login input { flex: 0 1 24rem; padding: .35rem .5rem; }
"""

# Shared by both pages: the configuration the server rendered, a status
# badge, and a batched refresh (events only say *what* changed; the page
# reads the record again, at most every 250 ms).
_COMMON = """
const cfg = JSON.parse(document.getElementById('cfg').textContent);
const live = document.getElementById('live');
function badge(status) {
  const s = document.createElement('span');
  s.className = 'status st-' + status; s.textContent = status; return s;
}
function seconds(x) { return x == null ? '' : x.toFixed(x < 10 ? 2 : 1) + ' s'; }
function when(t) {
  return t ? new Date(t * 1000).toISOString().replace('T', ' ').slice(0, 19) : '';
}
function connect(url, onEvent) {
  const sep = url.includes('?') ? '&' : '?';
  const es = new EventSource(url + sep + 'last_event_id=' + cfg.last_event_id);
  es.onopen = () => { live.textContent = 'live'; };
  es.onerror = () => { live.textContent = 'reconnecting…'; };
  es.onmessage = onEvent;
  for (const name of cfg.events) es.addEventListener(name, onEvent);
  return es;
}
"""

LIST_SCRIPT = (
    _COMMON
    + """
const tbody = document.querySelector('#executions tbody');
const pending = new Set();
let timer = null;
function upsert(rec) {
  const id = 'x-' + rec.id;
  let tr = document.getElementById(id);
  if (cfg.filter && rec.status !== cfg.filter) { if (tr) tr.remove(); return; }
  if (!tr) {
    tr = document.createElement('tr'); tr.id = id;
    for (let i = 0; i < 5; i++) tr.appendChild(document.createElement('td'));
    tr.cells[4].className = 'num';
    const a = document.createElement('a'); a.href = '/executions/' + encodeURIComponent(rec.id);
    a.className = 'mono'; a.textContent = rec.id; tr.cells[0].appendChild(a);
    tbody.insertBefore(tr, tbody.firstChild);
    while (tbody.rows.length > cfg.limit) tbody.lastChild.remove();
    const empty = document.getElementById('empty'); if (empty) empty.remove();
  }
  tr.dataset.status = rec.status;
  tr.cells[1].textContent = rec.workflow;
  tr.cells[2].replaceChildren(badge(rec.status));
  tr.cells[3].textContent = when(rec.created_at);
  tr.cells[4].textContent = seconds(rec.duration);
}
async function flush() {
  timer = null;
  const ids = Array.from(pending).slice(0, 50);
  for (const id of ids) pending.delete(id);
  for (const id of ids) {
    const url = '/v1/executions/' + encodeURIComponent(id);
    const r = await fetch(url, {credentials: 'same-origin'});
    if (r.ok) upsert(await r.json());
  }
  if (pending.size && !timer) timer = setTimeout(flush, 250);
}
connect('/v1/events', (e) => {
  const d = JSON.parse(e.data);
  if (!d.execution_id || !e.type.startsWith('workflow.')) return;
  pending.add(d.execution_id);
  if (!timer) timer = setTimeout(flush, 250);
});
"""
)

EXECUTION_SCRIPT = (
    _COMMON
    + """
let timer = null;
let es = null;
function show(rec) {
  const head = document.getElementById('status');
  head.replaceChildren(badge(rec.status));
  document.getElementById('duration').textContent = seconds(rec.duration);
  const err = document.getElementById('error');
  err.textContent = rec.error ? (rec.error.type + ': ' + rec.error.message) : '';
  for (const step of rec.steps) {
    const tr = document.getElementById('s-' + step.step_id);
    if (tr) {
      tr.dataset.status = step.status || 'pending';
      tr.cells[1].replaceChildren(badge(step.status || 'pending'));
      tr.cells[2].textContent = step.attempts || 0;
      tr.cells[3].textContent = seconds(step.duration);
      tr.cells[4].textContent = step.error ? (step.error.type + ': ' + step.error.message)
        : (step.output === undefined ? '' : JSON.stringify(step.output).slice(0, 200));
      tr.cells[4].className = step.error ? 'out error' : 'out mono';
    }
    const node = document.getElementById('n-' + step.step_id);
    if (node) node.setAttribute('class', 'node st-' + (step.status || 'pending'));
  }
  if (cfg.terminal.includes(rec.status) && es) {
    es.close(); es = null; live.textContent = 'finished';
  }
}
async function refresh() {
  timer = null;
  const url = '/v1/executions/' + encodeURIComponent(cfg.id);
  const r = await fetch(url, {credentials: 'same-origin'});
  if (r.ok) show(await r.json());
}
if (!cfg.terminal.includes(cfg.status)) {
  es = connect('/v1/executions/' + encodeURIComponent(cfg.id) + '/events', () => {
    if (!timer) timer = setTimeout(refresh, 150);
  });
} else {
  live.textContent = 'finished';
}
"""
)
