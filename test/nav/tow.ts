// A synthetic tow as the ship's navigation and CTD would send it, written as a recording: RMC and
// VHW every second, a timed CTD line every second, the ship running east across the antimeridian while
// the camera undulates between 2 and 22 m. Known exactly, so tests can check what comes out.
import { withChecksum } from '../../src/nav/index.js';

export interface TowOptions {
  startMs: number;
  seconds: number;
  /** Speed through water, knots. */
  stwKn: number;
  startLon: number;
  /** Degrees of longitude per second. */
  lonPerS: number;
  lat: number;
  /** Seconds (from the start) whose fixes are missing: a GPS dropout. */
  dropout?: [number, number];
  /** Seconds whose RMC is sent with a wrong checksum (and dropped). */
  corrupt?: number[];
}

const hms = (t: number) => new Date(t).toISOString().slice(11, 23).replace(/:/g, '').slice(0, 9);
const dmy = (t: number) => {
  const d = new Date(t).toISOString();
  return `${d.slice(8, 10)}${d.slice(5, 7)}${d.slice(2, 4)}`;
};
const ddm = (v: number, width: number) => {
  const a = Math.abs(v);
  const deg = Math.floor(a);
  return `${String(deg).padStart(width, '0')}${((a - deg) * 60).toFixed(5).padStart(8, '0')}`;
};
const wrap = (lon: number) => ((((lon + 180) % 360) + 360) % 360) - 180;

/** The depth of the camera s seconds into the tow: a triangle wave 2-22 m with a period of 40 s. */
export const towDepth = (s: number) => {
  const p = s % 40;
  return p < 20 ? 2 + p : 42 - p;
};
export const towLon = (o: TowOptions, s: number) => wrap(o.startLon + o.lonPerS * s);

/** The recording's lines. */
export function towRecording(o: TowOptions): string[] {
  const lines: string[] = [];
  for (let s = 0; s < o.seconds; s++) {
    const t = o.startMs + s * 1000;
    const lon = towLon(o, s);
    const out = o.dropout && s >= o.dropout[0] && s < o.dropout[1];
    const rmc = out
      ? withChecksum(`GPRMC,${hms(t)},V,,,,,,,${dmy(t)},,,N`)
      : withChecksum(`GPRMC,${hms(t)},A,${ddm(o.lat, 2)},${o.lat < 0 ? 'S' : 'N'},${ddm(lon, 3)},${lon < 0 ? 'W' : 'E'},${o.stwKn.toFixed(1)},90.0,${dmy(t)},,,A`);
    lines.push(o.corrupt?.includes(s) ? `${rmc.slice(0, -2)}${rmc.endsWith('00') ? '01' : '00'}` : rmc);
    lines.push(withChecksum(`IIVHW,90.0,T,,M,${o.stwKn.toFixed(2)},N,,K`));
    lines.push(withChecksum(`PCTD,${hms(t)},${towDepth(s).toFixed(3)},${(12 - towDepth(s) / 10).toFixed(3)},35.000`));
  }
  return lines;
}

/** The CTD format of the tow's lines, as nav.ctd.fields. */
export const TOW_CTD_FIELDS = '$PCTD time=1 depth=2 temperature=3 salinity=4';
