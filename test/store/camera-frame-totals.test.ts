// The camera frames' figures for status and /metrics are running totals, raised with the rows they
// count: after a frame is segmented, segmented again after a stop (its ROIs replaced), done (twice)
// and seen again under other names, they equal what counting the rows gives; a database at the
// schema before them is seeded from its rows.
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { migrate } from '../../src/store/db.js';
import type { CameraFrameInsert, CameraFrameRoiInsert } from '../../src/store/index.js';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { openShip, sha, tmp } from '../sync/helpers.js';

const T0 = Date.UTC(2026, 5, 3, 12, 0, 0);

function roi(index: number, roiSha: string): CameraFrameRoiInsert {
  return {
    index, sha256: roiSha, relPath: `rois/${roiSha.slice(0, 8)}.png`, x: index, y: index, width: 30, height: 20,
    cropX: index, cropY: index, cropWidth: 38, cropHeight: 28, areaPx: 200, majorPx: 20, minorPx: 8, orientationDeg: 10, meanGrey: 40,
    areaUm2: null, majorUm: null, minorUm: null,
  };
}

function frame(n: number, rois: number): CameraFrameInsert {
  return {
    sha256: sha('frame', n), relPath: `f${n}.png`, bytes: 4_194_304, mtimeMs: T0, width: 2048, height: 2048, format: 'png', polarity: 'bright-field',
    backgroundGrey: 220, components: rois, rejected: { small: 0, large: 0, border: 0, overflow: 0 }, pixelSizeUm: null, volumeM3: null,
    capturedAt: T0 + n, arrivedAt: T0 + n, segmentedAt: T0 + n, segmentMs: 100,
    rois: Array.from({ length: rois }, (_, i) => roi(i + 1, sha(`frame-${n}`, i))),
  };
}

/** What counting the rows gives (the figures before the running totals). */
function counted(db: Database.Database): Record<string, number> {
  return db.prepare(
    `SELECT (SELECT count(*) FROM camera_frames) AS segmented, (SELECT count(*) FROM camera_frames WHERE done_at IS NOT NULL) AS done,
            (SELECT count(*) FROM camera_frame_rois) AS rois, (SELECT count(*) FROM camera_frame_sources WHERE role = 'duplicate') AS duplicates`,
  ).get() as Record<string, number>;
}

describe('camera frame totals', () => {
  it('equal the rows they count through resegmenting, done twice and duplicates', () => {
    const ship = openShip(tmp('cf-totals'), 'cam-t');
    const repo = ship.store.cameraFrameRepository();
    const a = repo.recordSegmented(frame(1, 5));
    repo.recordSegmented(frame(1, 3)); // segmented again after a stop: 3 ROIs replace the 5
    const b = repo.recordSegmented(frame(2, 4));
    repo.recordSegmented(frame(3, 0));
    repo.markDone(a, { sha256: sha('frame', 1), relPath: 'f1.png', bytes: 1, mtimeMs: T0 }, T0);
    repo.markDone(a, { sha256: sha('frame', 1), relPath: 'f1.png', bytes: 1, mtimeMs: T0 }, T0 + 1);
    repo.markDone(b, { sha256: sha('frame', 2), relPath: 'f2.png', bytes: 1, mtimeMs: T0 }, T0);
    repo.recordDuplicate({ sha256: sha('frame', 1), relPath: 'copy/f1.png', bytes: 1, mtimeMs: T0 }, T0);
    repo.recordDuplicate({ sha256: sha('frame', 1), relPath: 'copy/f1.png', bytes: 1, mtimeMs: T0 + 5 }, T0 + 5);
    repo.recordDuplicate({ sha256: sha('frame', 2), relPath: 'again/f2.png', bytes: 1, mtimeMs: T0 }, T0);
    const totals = repo.totals();
    expect(totals).toEqual({ segmented: 3, done: 2, rois: 7, duplicates: 2, quarantined: 0 });
    expect(totals).toMatchObject(counted(ship.store.database as unknown as Database.Database));
    ship.close();
  });

  it('are seeded from the rows of a database migrated from the schema before them', () => {
    const dir = tmp('cf-totals-old');
    const ship = openShip(dir, 'cam-t');
    const repo = ship.store.cameraFrameRepository();
    repo.markDone(repo.recordSegmented(frame(1, 6)), { sha256: sha('frame', 1), relPath: 'f1.png', bytes: 1, mtimeMs: T0 }, T0);
    repo.recordSegmented(frame(2, 2));
    repo.recordDuplicate({ sha256: sha('frame', 1), relPath: 'copy/f1.png', bytes: 1, mtimeMs: T0 }, T0);
    ship.close();
    // Back to the schema before the running totals, then migrated again.
    const db = new Database(path.join(dir, 'ship.db'));
    db.exec(`DELETE FROM totals WHERE name LIKE 'camera_frames.%'`);
    db.pragma(`user_version = ${MIGRATIONS.length - 1}`);
    migrate(db, MIGRATIONS);
    const seeded = Object.fromEntries((db.prepare(`SELECT name, value FROM totals WHERE name LIKE 'camera_frames.%'`).all() as { name: string; value: number }[]).map((r) => [r.name.slice('camera_frames.'.length), r.value]));
    expect(seeded).toEqual({ segmented: 2, done: 1, rois: 8, duplicates: 1 });
    expect(seeded).toEqual(counted(db));
    db.close();
  });
});
