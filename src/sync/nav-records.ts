// Queues the navigation stage's series for the shore: each ROI's position and water as tagged
// (roi_positions, again when re-tagged), the ship's track and CTD series decimated to one point per
// sync.trackIntervalS, and the sampled volume summed into cells of a minute by half a metre. It
// reads the nav tables incrementally from marks kept in sync_marks, and queues what it read in the
// same transaction that moves the marks, so a crash neither loses nor doubles a record.
import type { Logger } from '../log.js';
import type { OutboxRepository } from '../store/index.js';
import { TablePoller } from './table-poller.js';
import { PRIORITY, type PositionItem, type PositionsPayload, type TrackPayload, type VolumesPayload } from './records.js';

export interface NavRecordsOptions {
  outbox: OutboxRepository;
  instrument: string;
  /** One track (and CTD) point per this many ms; 0 keeps every one. */
  trackIntervalMs: number;
  /** How often to look for new rows (default 2000 ms). */
  pollMs?: number;
  /** A volume row whose depth is still unknown waits this long for the nav stage to fill it in (default 120 s). */
  volumeSettleMs?: number;
  /** Called after something was queued (wakes the sender). */
  onQueued?: () => void;
  logger: Logger;
  now?: () => number;
}

/** Rows read per series per poll; a backlog is read over several polls. */
const READ_ROWS = 2000;
/** Items per positions record (about 100 bytes each as JSON). */
const ITEMS_PER_RECORD = 100;
export const VOLUME_CELL_MS = 60_000;
export const VOLUME_CELL_M = 0.5;

/** Rounds away float noise and bytes: positions to 1e-6° (0.1 m), depth and water to 1e-3. */
function r(x: number | null, decimals: number): number | null {
  if (x === null) return null;
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
}

/** One poll: reads what is new in each series and queues it. Returns how many records were queued. */
export function queueNavRecords(o: Pick<NavRecordsOptions, 'outbox' | 'instrument' | 'trackIntervalMs' | 'volumeSettleMs'>, now: number): number {
  const db = o.outbox;
  return db.transaction(() => {
    let queued = 0;
    const append = (kind: 'positions' | 'track' | 'volumes', key: string, payload: PositionsPayload | TrackPayload | VolumesPayload): void => {
      db.append(o.instrument, kind, PRIORITY[kind], key, JSON.stringify(payload), now);
      queued++;
    };

    // Positions: every (re)tagged ROI, in tag order.
    const positions = db.positionsAfter(db.mark('positions.taggedAt', -1), db.mark('positions.frameId', -1), READ_ROWS);
    for (let i = 0; i < positions.length; i += ITEMS_PER_RECORD) {
      const chunk = positions.slice(i, i + ITEMS_PER_RECORD);
      const items: PositionItem[] = chunk.map((p) => [p.sha256, p.t, p.timeSource, r(p.lat, 6), r(p.lon, 6), r(p.depthM, 3), r(p.temperatureC, 3), r(p.salinity, 3), p.quality, p.envQuality, p.taggedAt]);
      const last = chunk[chunk.length - 1]!;
      append('positions', `${last.taggedAt}:${last.frameId}`, { items });
    }
    if (positions.length > 0) {
      const last = positions[positions.length - 1]!;
      db.setMark('positions.taggedAt', last.taggedAt);
      db.setMark('positions.frameId', last.frameId);
    }

    // Track and CTD: decimated by time; the marks move over every row read.
    const fixes = db.fixesAfter(db.mark('track.fixId', 0), READ_ROWS);
    const env = db.envAfter(db.mark('track.envId', 0), READ_ROWS);
    if (fixes.length > 0 || env.length > 0) {
      const track: TrackPayload = { fixes: [], env: [] };
      let lastFix = db.mark('track.fixT', Number.MIN_SAFE_INTEGER);
      for (const f of fixes) {
        if (f.t - lastFix < o.trackIntervalMs && f.t >= lastFix) continue;
        track.fixes.push([f.t, r(f.lat, 6)!, r(f.lon, 6)!, r(f.sogKn, 2)]);
        lastFix = f.t;
      }
      let lastEnv = db.mark('track.envT', Number.MIN_SAFE_INTEGER);
      for (const e of env) {
        if (e.depthM === null && e.temperatureC === null && e.salinity === null) continue;
        if (e.t - lastEnv < o.trackIntervalMs && e.t >= lastEnv) continue;
        track.env.push([e.t, r(e.depthM, 3), r(e.temperatureC, 3), r(e.salinity, 3)]);
        lastEnv = e.t;
      }
      if (track.fixes.length > 0 || track.env.length > 0) append('track', `f${fixes[0]?.id ?? 0}:e${env[0]?.id ?? 0}`, track);
      if (fixes.length > 0) db.setMark('track.fixId', fixes[fixes.length - 1]!.id);
      if (env.length > 0) db.setMark('track.envId', env[env.length - 1]!.id);
      db.setMark('track.fixT', lastFix);
      db.setMark('track.envT', lastEnv);
    }

    // Volumes: summed into cells; a row whose depth is not known yet waits (and so do the rows after it).
    const settle = o.volumeSettleMs ?? 120_000;
    const cells = new Map<string, [number, number | null, number]>();
    let firstId = 0;
    let lastId = 0;
    for (const v of db.volumesAfter(db.mark('volumes.id', 0), READ_ROWS)) {
      if (v.depthM === null && v.t > now - settle) break;
      const t = Math.floor(v.t / VOLUME_CELL_MS) * VOLUME_CELL_MS;
      const d = v.depthM === null ? null : r(Math.floor(v.depthM / VOLUME_CELL_M) * VOLUME_CELL_M, 3);
      const k = `${t}|${d}`;
      const cell = cells.get(k) ?? [t, d, 0];
      cell[2] += v.volumeM3;
      cells.set(k, cell);
      firstId ||= v.id;
      lastId = v.id;
    }
    if (lastId > 0) {
      append('volumes', `${firstId}-${lastId}`, { cellMs: VOLUME_CELL_MS, cellM: VOLUME_CELL_M, cells: [...cells.values()].map(([t, d, m3]) => [t, d, Number(m3.toPrecision(12))]) });
      db.setMark('volumes.id', lastId);
    }
    return queued;
  });
}

/** Polls the nav tables while the sync stage runs. */
export class NavRecords extends TablePoller {
  constructor(options: NavRecordsOptions) {
    super(options, (now) => queueNavRecords(options, now), 'navigation records');
  }
}
