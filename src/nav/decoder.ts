// One input's lines into rows for the store: NMEA fixes and speeds, CTD samples, or the reason a
// line was dropped. Keeps the input's clock (dates for GGA, times for timeless sentences).
import type { EnvSampleInsert, NavFixInsert } from '../store/index.js';
import type { CtdFormat } from './ctd.js';
import { depthFromPressure } from './depth.js';
import { checkFrame, decodeNmea } from './nmea.js';
import { StreamClock, type ClockJump } from './stream-clock.js';

export type Decoded =
  | { type: 'fix'; row: NavFixInsert }
  | { type: 'env'; row: EnvSampleInsert }
  | { type: 'bad'; reason: string }
  | { type: 'jump'; jump: ClockJump }
  | { type: 'ignored'; sentence: string };

export interface DecoderOptions {
  source: string;
  requireChecksum: boolean;
  ctd: CtdFormat | null;
  /** Latitude for pressure to depth when no fix is known. */
  defaultLatitude: number;
  depthOffsetM: number;
  /** The latest latitude known (any input), for pressure to depth. */
  latitude: () => number | null;
}

/** Lines longer than this are not NMEA (82 characters) nor any CTD line: dropped as bad. */
const MAX_LINE = 400;

export class LineDecoder {
  private readonly o: DecoderOptions;
  private readonly clock = new StreamClock();

  constructor(options: DecoderOptions) {
    this.o = options;
  }

  /** Everything one line says (usually one item). Never throws. */
  decode(raw: string, receivedAt: number): Decoded[] {
    const line = raw.trim();
    if (line === '') return [];
    if (line.length > MAX_LINE) return [{ type: 'bad', reason: `line of ${line.length} characters` }];
    const ctd = this.o.ctd?.parse(line);
    if (ctd) {
      if (!ctd.ok) return [{ type: 'bad', reason: ctd.reason }];
      const v = ctd.values;
      let t: number;
      if (v.instantMs !== null) t = v.instantMs;
      else if (v.todMs !== null) t = this.clock.resolve(v.todMs, null, receivedAt);
      else t = this.clock.now(receivedAt);
      const lat = this.o.latitude() ?? this.o.defaultLatitude;
      const base = v.depthM ?? (v.pressureDbar !== null ? depthFromPressure(v.pressureDbar, lat) : null);
      const depthM = base === null ? null : base + this.o.depthOffsetM;
      return [{ type: 'env', row: { tMs: t, source: this.o.source, depthM, pressureDbar: v.pressureDbar, temperatureC: v.temperatureC, salinity: v.salinity, receivedAt } }];
    }
    const frame = checkFrame(line, this.o.requireChecksum);
    if (!frame.ok) return [{ type: 'bad', reason: frame.reason }];
    const obs = decodeNmea(frame.sentence, frame.body);
    const source = this.o.source;
    switch (obs.kind) {
      case 'bad':
        return [{ type: 'bad', reason: obs.reason }];
      case 'ignored':
        return [{ type: 'ignored', sentence: obs.sentence }];
      case 'date': {
        const t = obs.dateMs + obs.todMs;
        const jump = this.clock.observe(t, true, receivedAt);
        return jump ? [{ type: 'jump', jump }] : [];
      }
      case 'speed': {
        if (obs.sogKn === null && obs.stwKn === null) return [];
        const t = this.clock.now(receivedAt);
        return [{ type: 'fix', row: { tMs: t, source, sogKn: obs.sogKn, cogDeg: obs.cogDeg, stwKn: obs.stwKn, receivedAt } }];
      }
      case 'fix': {
        const t = this.clock.resolve(obs.todMs, obs.dateMs, receivedAt);
        const jump = this.clock.observe(t, obs.dateMs !== null, receivedAt);
        const out: Decoded[] = jump ? [{ type: 'jump', jump }] : [];
        if (obs.lat === null && obs.sogKn === null) return out; // a dropout: nothing to store
        out.push({
          type: 'fix',
          row: { tMs: t, source, lat: obs.lat, lon: obs.lon, sogKn: obs.sogKn, cogDeg: obs.cogDeg, fixQuality: obs.fixQuality, satellites: obs.satellites, hdop: obs.hdop, receivedAt },
        });
        return out;
      }
    }
  }
}
