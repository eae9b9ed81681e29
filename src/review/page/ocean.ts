// The review page's ocean panel: the live depth profile of concentrations per class (individuals per
// m³, depth downwards) and the ship's track, drawn as SVG from GET /api/nav. No map tiles: the ship
// is offline; the track is drawn on its own latitude/longitude box, unwrapped across 180°.
import { $ as byId, color, svgNodes } from './dom.js';

interface ProfileBin {
  depthMinM: number;
  depthMaxM: number;
  volumeM3: number;
  total: number;
  counts: Record<string, number>;
  perM3: Record<string, number | null>;
}
interface NavData {
  enabled: boolean;
  hours: number;
  profile?: { fromMs: number; toMs: number; binM: number; bins: ProfileBin[] } | null;
  track?: { fromMs: number; toMs: number; points: { t: number; lat: number; lon: number }[] } | null;
}

const settings = JSON.parse(document.getElementById('settings')?.textContent ?? '{}') as { chartHours?: number; chartRefreshS?: number };
/** One line per class (the six most counted), individuals per m³ against depth. */
function drawProfile(bins: ProfileBin[]): void {
  const W = 420, H = 300, left = 44, right = 10, top = 10, bottom = 24;
  const totals = new Map<string, number>();
  for (const b of bins) for (const [l, n] of Object.entries(b.counts)) totals.set(l, (totals.get(l) ?? 0) + n);
  const classes = [...totals].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([l]) => l);
  const maxDepth = Math.max(1, ...bins.map((b) => b.depthMaxM));
  let maxC = 0;
  for (const b of bins) for (const l of classes) maxC = Math.max(maxC, b.perM3[l] ?? 0);
  maxC = maxC > 0 ? maxC : 1;
  const x = (v: number) => left + (v / maxC) * (W - left - right);
  const y = (d: number) => top + (d / maxDepth) * (H - top - bottom);
  const { nodes, mk } = svgNodes();
  for (const f of [0, 0.5, 1]) {
    mk('line', { class: 'grid', x1: x(maxC * f), x2: x(maxC * f), y1: top, y2: H - bottom });
    mk('text', { x: x(maxC * f), y: H - 8, 'text-anchor': 'middle' }, (maxC * f).toPrecision(2));
    mk('line', { class: 'grid', x1: left, x2: W - right, y1: y(maxDepth * f), y2: y(maxDepth * f) });
    mk('text', { x: left - 4, y: y(maxDepth * f) + 4, 'text-anchor': 'end' }, `${Math.round(maxDepth * f)} m`);
  }
  classes.forEach((label, i) => {
    const pts = bins.filter((b) => b.volumeM3 > 0).map((b) => `${x(b.perM3[label] ?? 0).toFixed(1)},${y((b.depthMinM + b.depthMaxM) / 2).toFixed(1)}`);
    if (pts.length > 0) mk('polyline', { points: pts.join(' '), fill: 'none', stroke: color(i), 'stroke-width': 1.8 });
    for (const p of pts) {
      const [cx, cy] = p.split(',');
      mk('circle', { cx: cx!, cy: cy!, r: 2.5, fill: color(i) });
    }
  });
  byId('profile').replaceChildren(...nodes);
  byId('profile-legend').replaceChildren(
    ...classes.map((l, i) => {
      const s = document.createElement('span');
      s.innerHTML = '<i></i>';
      (s.firstChild as HTMLElement).style.background = color(i);
      s.append(` ${l} `);
      return s;
    }),
    document.createTextNode(bins.length > 0 ? `· per m³, ${bins[0]!.depthMaxM - bins[0]!.depthMinM} m bins` : 'no concentrations yet'),
  );
}

/** The track in an equirectangular box scaled by cos(latitude), unwrapped across the antimeridian. */
function drawTrack(points: { t: number; lat: number; lon: number }[]): void {
  const W = 420, H = 300, pad = 16;
  const { nodes, mk } = svgNodes();
  if (points.length > 0) {
    const lons: number[] = [];
    let prev = points[0]!.lon;
    let shift = 0;
    for (const p of points) {
      if (p.lon - prev > 180) shift -= 360;
      else if (p.lon - prev < -180) shift += 360;
      prev = p.lon;
      lons.push(p.lon + shift);
    }
    const lats = points.map((p) => p.lat);
    const [lo0, lo1, la0, la1] = [Math.min(...lons), Math.max(...lons), Math.min(...lats), Math.max(...lats)];
    const k = Math.cos((((la0 + la1) / 2) * Math.PI) / 180);
    const spanX = Math.max(1e-6, (lo1 - lo0) * k);
    const spanY = Math.max(1e-6, la1 - la0);
    const scale = Math.min((W - 2 * pad) / spanX, (H - 2 * pad) / spanY);
    const x = (lon: number) => pad + (lon - lo0) * k * scale;
    const y = (lat: number) => H - pad - (lat - la0) * scale;
    mk('polyline', { points: points.map((p, i) => `${x(lons[i]!).toFixed(1)},${y(p.lat).toFixed(1)}`).join(' '), fill: 'none', stroke: '#4cc3ff', 'stroke-width': 1.8 });
    const wrap = (v: number) => ((((v + 180) % 360) + 360) % 360) - 180;
    const deg = (v: number) => `${v.toFixed(3)}°`;
    mk('text', { x: 2, y: 10 }, `${deg(la1)} lat`);
    mk('text', { x: 2, y: H - 2 }, `${deg(la0)} lat, ${deg(wrap(lo0))} lon`);
    mk('text', { x: W - 2, y: H - 2, 'text-anchor': 'end' }, `${deg(wrap(lo1))} lon`);
    const last = points.length - 1;
    mk('circle', { cx: x(lons[last]!).toFixed(1), cy: y(points[last]!.lat).toFixed(1), r: 4, fill: '#ffb347' });
    const fmt = (v: number, pos: string, neg: string) => `${Math.abs(v).toFixed(3)}° ${v >= 0 ? pos : neg}`;
    byId('track-caption').textContent = `now ${fmt(points[last]!.lat, 'N', 'S')}, ${fmt(wrap(points[last]!.lon), 'E', 'W')} · ${points.length} fixes`;
  } else {
    byId('track-caption').textContent = 'no position fixes yet';
  }
  byId('track').replaceChildren(...nodes);
}

async function load(): Promise<void> {
  const hours = settings.chartHours ?? 6;
  try {
    const res = await fetch(`/api/nav?hours=${hours}`, { headers: { accept: 'application/json' } });
    if (!res.ok) {
      byId('ocean-updated').textContent = `· HTTP ${res.status}`;
      return;
    }
    const data = (await res.json()) as NavData;
    byId('ocean-panel').hidden = !data.enabled;
    if (!data.enabled) return;
    byId('ocean-hours').textContent = String(data.hours);
    drawProfile(data.profile?.bins ?? []);
    drawTrack(data.track?.points ?? []);
    byId('ocean-updated').textContent = `· updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    byId('ocean-updated').textContent = `· ${(err as Error).message}`;
  }
}

void load();
setInterval(() => void load(), (settings.chartRefreshS ?? 30) * 1000);
