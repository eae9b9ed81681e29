// Capture times and sidecars from real files: a JPEG with EXIF written by sharp, JSON sidecars
// beside it and in its folder.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { CaptureReader } from '../../src/nav/capture.js';
import { defaults } from '../../src/config/index.js';
import { tempDir } from '../store/helpers.js';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

async function jpegWithExif(original: string, subSec?: string, offset?: string): Promise<Buffer> {
  return sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } })
    .jpeg()
    .withExif({ IFD0: { Software: 'camera' }, IFD2: { DateTimeOriginal: original, ...(subSec ? { SubSecTimeOriginal: subSec } : {}), ...(offset ? { OffsetTimeOriginal: offset } : {}) } })
    .toBuffer();
}

describe('capture time and sidecars', () => {
  it('takes the file name, then EXIF, then the sidecar, then arrival; sidecar values over the folder\'s', async () => {
    const { dir, cleanup } = tempDir('capture');
    cleanups.push(cleanup);
    const cast = join(dir, 'cast-1');
    mkdirSync(cast);
    const reader = new CaptureReader({ filenamePattern: defaults().nav.time.filenamePattern, exif: true, perImage: true, folderFile: 'ctd.json' });
    const exif = await jpegWithExif('2026:12:07 12:00:03', '250', '+02:00');
    writeFileSync(join(cast, 'ctd.json'), JSON.stringify({ depth_m: 40, salinity: 34.9 }));
    const at = (name: string) => ({ path: join(cast, name), relPath: `cast-1/${name}`, arrivedAt: 42 });

    writeFileSync(join(cast, '20261207T120000.500Z_a.jpg'), exif);
    expect(await reader.read(at('20261207T120000.500Z_a.jpg'))).toMatchObject({ t: Date.UTC(2026, 11, 7, 12, 0, 0, 500), timeSource: 'filename', sidecar: { depthM: 40, salinity: 34.9 } });

    writeFileSync(join(cast, 'b.jpg'), exif);
    writeFileSync(join(cast, 'b.json'), JSON.stringify({ time: '2026-12-07T12:09:00Z', depth_m: 12.5, lat: -17.5, lon: 179.9, volume_m3: 0.25 }));
    expect(await reader.read(at('b.jpg'))).toMatchObject({ t: Date.UTC(2026, 11, 7, 10, 0, 3, 250), timeSource: 'exif', sidecar: { depthM: 12.5, salinity: 34.9, lat: -17.5, volumeM3: 0.25 } });

    writeFileSync(join(cast, 'c.png'), await sharp(exif).png().toBuffer());
    writeFileSync(join(cast, 'c.json'), JSON.stringify({ time: Date.UTC(2026, 11, 7, 12, 9) }));
    expect(await reader.read(at('c.png'))).toMatchObject({ t: Date.UTC(2026, 11, 7, 12, 9), timeSource: 'sidecar' });

    writeFileSync(join(cast, 'd.png'), 'not even an image');
    writeFileSync(join(cast, 'd.json'), '{"depth_m": "deep"}');
    const d = await reader.read(at('d.png'));
    expect(d).toMatchObject({ t: 42, timeSource: 'arrival', sidecar: { depthM: 40 } });
    expect(d.problems).toEqual([expect.stringMatching(/d\.json: "depth_m" is not a number/)]);

    // A file already moved away: name and arrival only, never a throw.
    expect(await reader.read(at('gone.jpg'))).toMatchObject({ t: 42, timeSource: 'arrival' });
  });
});
