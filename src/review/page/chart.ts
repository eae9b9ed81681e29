// The review page's live chart: ROIs per class over the last hours, from GET /api/counts, one line
// for each of the six most counted classes and one for the rest, drawn as SVG.
import { messageOf, api } from './api.js';
import { $, color, el, svgNodes } from './dom.js';

/** GET /api/counts. */
interface Counts {
  until: number;
  bucketMs: number;
  total: number;
  totals: Record<string, number>;
  buckets: { start: number; counts: Record<string, number> }[];
  validated: { total: number };
}

/** Fetch the counts of the last `hours` and draw them. */
export async function loadChart(hours: number): Promise<void> {
  const bucketS = Math.max(60, Math.round((hours * 3600) / 48));
  try {
    const c = await api<Counts>('GET', `/api/counts?since=${hours}h&bucketS=${bucketS}`);
    drawChart(c, hours);
    $('chart-updated').textContent = `· ${c.total} ROIs, ${c.validated.total} validated · updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    $('chart-updated').textContent = `· ${messageOf(err)}`;
  }
}

function drawChart(c: Counts, hours: number): void {
  const svg = $('chart');
  const W = 1200, H = 130, left = 30, bottom = 14, top = 8;
  const end = c.until;
  const start = end - hours * 3_600_000;
  const ranked = Object.entries(c.totals).sort((a, b) => b[1] - a[1]);
  const shown = ranked.slice(0, 6).map(([l]) => l);
  const series = shown.map((label) => ({ label, values: new Map<number, number>() }));
  const other = { label: 'other', values: new Map<number, number>() };
  for (const b of c.buckets) {
    for (const [label, n] of Object.entries(b.counts)) {
      const s = series.find((x) => x.label === label) ?? other;
      s.values.set(b.start, (s.values.get(b.start) ?? 0) + n);
    }
  }
  if (ranked.length > 6) series.push(other);
  const starts: number[] = [];
  for (let t = Math.floor(start / c.bucketMs) * c.bucketMs; t < end; t += c.bucketMs) starts.push(t);
  let max = 1;
  for (const s of series) for (const v of s.values.values()) max = Math.max(max, v);
  // A bucket longer than the chart (a long counts window) is drawn at the chart's edge, not off it.
  const x = (t: number) => left + Math.min(1, Math.max(0, (t + c.bucketMs / 2 - start) / (end - start))) * (W - left - 8);
  const y = (v: number) => H - bottom - (v / max) * (H - bottom - top);
  const { nodes, mk } = svgNodes();
  for (const frac of [0, 0.5, 1]) {
    mk('line', { class: 'grid', x1: left, x2: W, y1: y(max * frac), y2: y(max * frac) });
    mk('text', { x: 2, y: y(max * frac) + 3 }, String(Math.round(max * frac)));
  }
  mk('text', { x: left, y: H - 2 }, new Date(start).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
  mk('text', { x: W - 8, y: H - 2, 'text-anchor': 'end' }, 'now');
  series.forEach((s, i) => {
    const pts = starts.map((t) => `${x(t).toFixed(1)},${y(s.values.get(t) ?? 0).toFixed(1)}`).join(' ');
    mk('polyline', { points: pts, fill: 'none', stroke: color(i), 'stroke-width': 1.8 });
    for (const t of starts) {
      const v = s.values.get(t);
      if (v) mk('circle', { cx: x(t).toFixed(1), cy: y(v).toFixed(1), r: 2.5, fill: color(i) });
    }
  });
  svg.replaceChildren(...nodes);
  $('legend').replaceChildren(
    ...series.map((s, i) => el('li', {}, el('i', { style: `background:${color(i)}` }), `${s.label} ${c.totals[s.label] ?? [...s.values.values()].reduce((a, b) => a + b, 0)}`)),
  );
}
