import { describe, expect, it } from 'vitest';
import { ctdFormat } from '../../src/nav/ctd.js';
import { LineDecoder, type Decoded } from '../../src/nav/decoder.js';
import { depthFromPressure } from '../../src/nav/depth.js';
import { interpolateLongitude, positionAt, valueAt, wrapLongitude } from '../../src/nav/geo.js';
import { checkFrame, decodeNmea, withChecksum } from '../../src/nav/nmea.js';
import { filenameTimeReader } from '../../src/nav/capture.js';
import { VolumeSweeper, KNOT_MS } from '../../src/nav/sweeper.js';

const decoder = (extra: Partial<ConstructorParameters<typeof LineDecoder>[0]> = {}) =>
  new LineDecoder({ source: 'test', requireChecksum: true, ctd: null, defaultLatitude: 45, depthOffsetM: 0, latitude: () => null, ...extra });
const fixes = (items: Decoded[]) => items.flatMap((d) => (d.type === 'fix' ? [d.row] : []));

describe('NMEA sentences', () => {
  it('decodes GGA and RMC from any talker, dated by the RMC of the same input', () => {
    const d = decoder();
    const rmc = d.decode('$GNRMC,235959.50,A,4807.038,N,01131.000,W,5.5,084.4,230394,003.1,W*6E', 0);
    expect(rmc).toEqual([{ type: 'bad', reason: expect.stringMatching(/checksum/) }]);
    const good = withChecksum('GNRMC,235959.50,A,4807.038,N,01131.000,W,5.5,084.4,230394,003.1,W');
    const [r] = fixes(d.decode(good, 1));
    expect(r).toMatchObject({ tMs: Date.UTC(1994, 2, 23, 23, 59, 59, 500), lat: 48.1173, sogKn: 5.5, cogDeg: 84.4 });
    expect(r!.lon).toBeCloseTo(-11.516667, 6);
    // GGA has only a time of day: just after midnight it belongs to the next day.
    const [g] = fixes(d.decode(withChecksum('GPGGA,000000.50,4807.038,S,01131.000,E,1,08,0.9,545.4,M,46.9,M,,'), 2));
    expect(g).toMatchObject({ tMs: Date.UTC(1994, 2, 24, 0, 0, 0, 500), lat: -48.1173, fixQuality: 1, satellites: 8, hdop: 0.9 });
  });

  it('turns a GPS dropout into no position, never into 0 N 0 E', () => {
    const d = decoder();
    expect(fixes(d.decode(withChecksum('GPGGA,123519,,,,,0,00,,,M,,M,,'), 0))).toEqual([]);
    expect(fixes(d.decode(withChecksum('GPRMC,123519,V,,,,,,,230394,,,N'), 0))).toEqual([]);
    expect(fixes(d.decode(withChecksum('GPGGA,123520,4807.038,N,01131.000,E,0,00,,,M,,M,,'), 0))).toEqual([]);
  });

  it('reads speed through water (VHW) and over ground (VTG), and ignores what it does not use', () => {
    const d = decoder();
    expect(fixes(d.decode(withChecksum('IIVHW,,T,,M,3.5,N,6.48,K'), 0))[0]).toMatchObject({ stwKn: 3.5, sogKn: null });
    expect(fixes(d.decode(withChecksum('GPVTG,054.7,T,034.4,M,005.5,N,010.2,K,A'), 0))[0]).toMatchObject({ sogKn: 5.5, cogDeg: 54.7 });
    expect(fixes(d.decode(withChecksum('GPVTG,,T,,M,,N,,K,N'), 0))).toEqual([]);
    expect(d.decode(withChecksum('GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00'), 0)).toEqual([{ type: 'ignored', sentence: 'GSV' }]);
  });

  it('drops bad lines with a reason and never throws', () => {
    const d = decoder();
    for (const line of ['garbage', '$GPGGA,123519*ZZ', '$GPGGA,123519,4807.038,N', withChecksum('GPGGA,99x,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,'), '$' + 'A'.repeat(500), '$\u0000\u0001*00']) {
      const out = d.decode(line, 0);
      expect(out.every((o) => o.type === 'bad'), line).toBe(true);
    }
    expect(checkFrame('$GPGGA,1', false)).toMatchObject({ ok: true });
    expect(checkFrame('$GPGGA,1', true)).toMatchObject({ ok: false });
  });

  it('reports time going backwards (a clock jump) and keeps the fix at its own time', () => {
    const d = decoder();
    const day = withChecksum('GPZDA,120000.00,07,12,2026,00,00');
    d.decode(day, 1_000);
    const a = d.decode(withChecksum('GPGGA,120001,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,'), 2_000);
    expect(a.map((x) => x.type)).toEqual(['fix']);
    const b = d.decode(withChecksum('GPGGA,115000,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,'), 3_000);
    expect(b.map((x) => x.type)).toEqual(['jump', 'fix']);
    expect(fixes(b)[0]!.tMs).toBe(Date.UTC(2026, 11, 7, 11, 50, 0));
  });

  it('decodes the library-known sentence ids only after the frame check', () => {
    expect(decodeNmea('$GPXXX,1*00', 'GPXXX,1')).toEqual({ kind: 'ignored', sentence: 'XXX' });
  });
});

describe('CTD sentences', () => {
  it('reads a regular expression format, pressure to depth at the latest latitude', () => {
    const ctd = ctdFormat(String.raw`^\$PCTD,(?<pressure>[-\d.]+),(?<temperature>[-\d.]+),(?<salinity>[-\d.]+)`, '');
    const d = decoder({ ctd, latitude: () => 30 });
    const [e] = d.decode(withChecksum('PCTD,10000,2.5,34.7'), 5);
    expect(e).toMatchObject({ type: 'env', row: { pressureDbar: 10000, temperatureC: 2.5, salinity: 34.7, tMs: 5 } });
    expect((e as { row: { depthM: number } }).row.depthM).toBeCloseTo(9712.653, 3);
    expect(d.decode('$PCTD,10,2.5,34.7*00', 5)).toEqual([{ type: 'bad', reason: 'CTD checksum 00 is wrong' }]);
  });

  it('reads a field-index format with its own time', () => {
    const ctd = ctdFormat('', '$SBE time=1 depth=2 temperature=3');
    const d = decoder({ ctd, depthOffsetM: 1.5 });
    d.decode(withChecksum('GPZDA,120000.00,07,12,2026,00,00'), 0);
    const [e] = d.decode('$SBE,120005.5,12.25,9.5', 10);
    expect(e).toMatchObject({ type: 'env', row: { tMs: Date.UTC(2026, 11, 7, 12, 0, 5, 500), depthM: 13.75, temperatureC: 9.5, salinity: null } });
    expect(d.decode('$SBE,120005.5,deep,9.5', 10)[0]).toMatchObject({ type: 'bad' });
  });

  it('refuses a format it cannot use, naming the key', () => {
    expect(() => ctdFormat('(unclosed', '')).toThrow(/nav\.ctd\.pattern/);
    expect(() => ctdFormat('^\\$X,(\\d+)', '')).toThrow(/named group/);
    expect(() => ctdFormat('', '$X depth=0')).toThrow(/nav\.ctd\.fields/);
  });
});

describe('depth, longitude and interpolation', () => {
  it('gives the UNESCO 1983 check value and a plausible shallow depth', () => {
    expect(depthFromPressure(10000, 30)).toBeCloseTo(9712.653, 3); // Fofonoff and Millard (1983), check value
    expect(depthFromPressure(100, 45)).toBeCloseTo(99.164, 3);
    expect(depthFromPressure(0, 0)).toBe(0);
  });

  it('interpolates longitude the short way across the antimeridian', () => {
    expect(interpolateLongitude(179.5, -179.5, 0.5)).toBe(-180);
    expect(interpolateLongitude(179.5, -179.5, 0.25)).toBeCloseTo(179.75, 9);
    expect(interpolateLongitude(-179.5, 179.5, 0.75)).toBeCloseTo(179.75, 9);
    expect(interpolateLongitude(10, 20, 0.5)).toBe(15);
    expect(wrapLongitude(540)).toBe(-180);
  });

  it('interpolates within maxGap, holds past it up to maxHold, then calls it missing', () => {
    const tol = { maxGapMs: 10_000, maxHoldMs: 60_000 };
    const b = { before: { t: 0, lat: 10, lon: 179 }, after: { t: 10_000, lat: 11, lon: -179 } };
    expect(positionAt(2_500, b, tol)).toEqual({ value: { lat: 10.25, lon: 179.5 }, quality: 'interpolated', gapS: 10 });
    const gap = { before: { t: 0, value: 5 }, after: { t: 100_000, value: 15 } };
    expect(valueAt(30_000, gap, tol)).toEqual({ value: 5, quality: 'held', gapS: 30 });
    expect(valueAt(80_000, gap, tol)).toEqual({ value: 15, quality: 'held', gapS: 20 });
    expect(valueAt(50_000, { before: { t: 0, value: 5 } }, { ...tol, maxHoldMs: 40_000 })).toEqual({ value: null, quality: 'missing', gapS: 50 });
    expect(valueAt(50_000, {}, tol)).toEqual({ value: null, quality: 'missing', gapS: null });
  });
});

describe('capture time from the file name', () => {
  const read = filenameTimeReader('(?<year>\\d{4})-?(?<month>\\d{2})-?(?<day>\\d{2})[T_ -]?(?<hour>\\d{2}):?(?<minute>\\d{2}):?(?<second>\\d{2})(?:[.,](?<fraction>\\d{1,6}))?');
  it('reads the default pattern in its usual spellings, and nothing from other names', () => {
    expect(read('20261207T001512.345Z_cam1_00017.jpg')).toBe(Date.UTC(2026, 11, 7, 0, 15, 12, 345));
    expect(read('2026-12-07_00:15:12.jpg')).toBe(Date.UTC(2026, 11, 7, 0, 15, 12));
    expect(read('100010.jpg')).toBeNull();
    expect(read('20261340T001512.jpg')).toBeNull();
  });
});

describe('swept volume', () => {
  it('integrates width x depth of field x speed through water, ignoring ground speed while VHW flows', () => {
    const s = new VolumeSweeper({ fovWidthM: 0.5, depthOfFieldM: 0.2, speed: 'auto', maxGapMs: 5_000 });
    const row = (tMs: number, o: { stwKn?: number; sogKn?: number }) => ({ tMs, source: 'x', receivedAt: 0, ...o });
    expect(s.push(row(0, { stwKn: 2 }))).toBeNull();
    expect(s.push(row(0, { sogKn: 9 }))).toBeNull();
    expect(s.push(row(1_000, { sogKn: 9 }))).toBeNull();
    expect(s.push(row(2_000, { stwKn: 4 }))!.volumeM3).toBeCloseTo(0.1 * 2 * KNOT_MS * 2, 12);
    expect(s.push(row(20_000, { stwKn: 4 }))).toBeNull(); // a gap: its volume is unknown, not counted
    expect(s.push(row(21_000, { stwKn: 4 }))!.volumeM3).toBeCloseTo(0.1 * 4 * KNOT_MS, 12);
  });
});
