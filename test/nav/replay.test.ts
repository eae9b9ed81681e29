// `plankwatch replay` into the nav stage over real sockets: a receiver's recording from the gpsd
// project, and a synthetic tow across the antimeridian with a dropout and corrupt sentences.
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { filenameTimeReader, withChecksum } from '../../src/nav/index.js';
import type { UdpInput } from '../../src/nav/inputs/index.js';
import { replay, stampOf, timeline } from '../../src/nav/replay.js';
import { defaults } from '../../src/config/index.js';
import { rig, type Rig } from './helpers.js';
import { towRecording, TOW_CTD_FIELDS } from './tow.js';

const FURUNO = join(import.meta.dirname, '..', 'fixtures', 'nmea', 'furuno-gt88.nmea');

let r: Rig | undefined;
afterEach(async () => {
  await r?.close();
  r = undefined;
});

describe('replay', () => {
  it('gives each line of a recording the time of the last timed sentence before it', () => {
    const lines = ['# a comment', withChecksum('GPGGA,235959,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,'), withChecksum('GPVTG,1'), withChecksum('GPRMC,000000,A,4807.038,N,01131.000,E,0.0,0.0,010126,,,A')];
    const t = timeline(lines.join('\n'));
    // The GGA before the first date takes the day that puts it just before the RMC's midnight.
    expect(t.map((l) => l.t)).toEqual([Date.UTC(2025, 11, 31, 23, 59, 59), Date.UTC(2025, 11, 31, 23, 59, 59), Date.UTC(2026, 0, 1)]);
  });

  it('plays a real receiver recording over UDP: every fix stored, proprietary and satellite sentences ignored, none bad', async () => {
    r = rig({ udp: { ports: '0', host: '127.0.0.1' }, flushMs: 20 });
    await r.stage.start();
    const port = (r.stage.inputList[0] as UdpInput).boundPort;
    const result = await replay({ navFile: FURUNO, udp: `127.0.0.1:${port}`, speed: 50 });
    expect(result).toMatchObject({ lines: 59, firstMs: Date.UTC(2022, 6, 31, 12, 2, 13), lastMs: Date.UTC(2022, 6, 31, 12, 2, 15) });
    for (let i = 0; i < 100 && r.stage.stats.sentences + r.stage.stats.ignored < 56; i++) await new Promise((res) => setTimeout(res, 20));
    await r.stage.settled();
    // Per second: RMC, GNS and GGA are fixes; ZDA dates them; 2 GSA, 4 GSV (GP, GL x3 ... ) and PERD are ignored.
    expect(r.stage.stats).toMatchObject({ sentences: 9, bad: 0, clockJumps: 0 });
    expect(r.stage.stats.ignored).toBe(59 - 9 - 3);
    const track = r.store.navRepository().track(0, Date.UTC(2030, 0, 1), 100);
    expect(track).toHaveLength(9);
    expect(track[0]).toEqual({ t: Date.UTC(2022, 6, 31, 12, 2, 13), lat: 59 + 57.0062 / 60, lon: 11 + 0.6429 / 60 });
  });

  it('plays a tow and a folder of images named with the recording\'s time', async () => {
    r = rig({ udp: { ports: '0', host: '127.0.0.1' }, flushMs: 20, ctd: { fields: TOW_CTD_FIELDS } });
    await r.stage.start();
    const port = (r.stage.inputList[0] as UdpInput).boundPort;
    const start = Date.UTC(2026, 11, 7, 12, 0, 0);
    const rec = join(r.dir, 'tow.nmea');
    writeFileSync(rec, `${towRecording({ startMs: start, seconds: 20, stwKn: 3, startLon: 179.99, lonPerS: 0.001, lat: -20, dropout: [5, 8], corrupt: [10] }).join('\n')}\n`);
    const images = join(r.dir, 'images');
    mkdirSync(images);
    for (const n of ['a.jpg', 'b.jpg', 'c.png', 'notes.txt']) writeFileSync(join(images, n), 'x');
    const into = join(r.dir, 'incoming');
    const result = await replay({ navFile: rec, udp: `127.0.0.1:${port}`, speed: 20, imagesDir: images, into, rate: 10, count: 5 });
    expect(result).toMatchObject({ lines: 60, images: 5 });
    await new Promise((res) => setTimeout(res, 200));
    await r.stage.settled();
    expect(r.stage.stats.bad).toBe(1);
    expect(r.stage.stats.envSamples).toBe(20);
    const names = readdirSync(into).sort();
    expect(names).toHaveLength(5);
    const read = filenameTimeReader(defaults().nav.time.filenamePattern);
    for (const n of names) {
      const t = read(n)!;
      expect(t).toBeGreaterThanOrEqual(start);
      expect(t).toBeLessThan(start + 20_000);
    }
    expect(stampOf(start)).toBe('20261207T120000.000Z');
  });
});
