import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { Store } from '../../src/store/store.js';
import { classified, fixtureFiles, incoming, tempDir } from './helpers.js';

const T0 = 1_700_000_000_000;

describe('NavRepository (migration 7)', () => {
  let store: Store;
  let cleanup: () => void;

  beforeEach(() => {
    const t = tempDir('navrepo');
    cleanup = t.cleanup;
    store = new Store({ path: join(t.dir, 'pw.db'), countsWindowMs: 60_000, logger: silentLogger(), now: () => T0 });
    store.open();
  });
  afterEach(() => {
    store.close();
    cleanup();
  });

  it('stores fixes and CTD samples and finds the samples bracketing an instant', () => {
    const nav = store.navRepository();
    nav.insertFixes([
      { tMs: T0, source: 'gps', lat: 10, lon: 179.5, sogKn: 5, receivedAt: T0 },
      { tMs: T0 + 1000, source: 'gps', stwKn: 4.5, receivedAt: T0 + 1000 }, // speed only: no position
      { tMs: T0 + 2000, source: 'gps', lat: 10.1, lon: -179.5, receivedAt: T0 + 2000 },
    ]);
    nav.insertEnvSamples([
      { tMs: T0 + 500, source: 'ctd', depthM: 10, temperatureC: 12, receivedAt: T0 },
      { tMs: T0 + 1500, source: 'ctd', salinity: 35, receivedAt: T0 },
    ]);
    expect(nav.positionBracket(T0 + 1000)).toEqual({ before: { t: T0, lat: 10, lon: 179.5 }, after: { t: T0 + 2000, lat: 10.1, lon: -179.5 } });
    expect(nav.positionBracket(T0 + 3000).after).toBeUndefined();
    expect(nav.envBracket('depth_m', T0 + 1000)).toEqual({ before: { t: T0 + 500, value: 10 } });
    expect(nav.envBracket('salinity', T0 + 1000)).toEqual({ after: { t: T0 + 1500, value: 35 } });
    expect(nav.track(T0, T0 + 5000, 10)).toHaveLength(2);
    expect(nav.track(T0, T0 + 5000, 1)).toEqual([{ t: T0, lat: 10, lon: 179.5 }]);
  });

  it('refuses an impossible latitude and a negative volume', () => {
    const nav = store.navRepository();
    expect(() => nav.insertFixes([{ tMs: T0, source: 'x', lat: 91, lon: 0, receivedAt: T0 }])).toThrow(/CHECK/);
    expect(() => nav.insertVolumes([{ tMs: T0, volumeM3: -1, source: 'x' }])).toThrow(/CHECK/);
  });

  it('keeps one position row per stored frame, lists the ones to tag again, and joins the current label', () => {
    const [a, b] = fixtureFiles();
    store.recordClassified([classified(incoming(a!, 'a.jpg'), 'copepod', T0), classified(incoming(b!, 'b.jpg'), 'diatom', T0)]);
    const nav = store.navRepository();
    const frames = nav.framesWithoutPosition(10);
    expect(frames.map((f) => f.relPath)).toEqual(['a.jpg', 'b.jpg']);
    expect([...nav.frameIds([incoming(b!, 'b.jpg').sha256, 'f'.repeat(64)]).values()]).toEqual([frames[1]!.frameId]);
    const base = { timeSource: 'filename' as const, lat: 1, lon: 2, depthM: 12, temperatureC: null, salinity: null, gapS: 1, envQuality: 'interpolated' as const, envGapS: 1, taggedAt: T0 };
    nav.upsertRoiPositions([
      { ...base, frameId: frames[0]!.frameId, tMs: T0 + 10, quality: 'interpolated' },
      { ...base, frameId: frames[1]!.frameId, tMs: T0 + 20, quality: 'missing', lat: null, lon: null },
    ]);
    expect(nav.framesWithoutPosition(10)).toEqual([]);
    expect(nav.untagged(T0, T0 + 100, 10).map((r) => r.frameId)).toEqual([frames[1]!.frameId]);
    nav.upsertRoiPositions([{ ...base, frameId: frames[1]!.frameId, tMs: T0 + 20, quality: 'interpolated' }]);
    expect(nav.untagged(T0, T0 + 100, 10)).toEqual([]);
    expect(nav.roiPosition(frames[1]!.frameId)?.lat).toBe(1);
    const rois = nav.taggedRois(T0, T0 + 100).sort((x, y) => x.t - y.t);
    expect(rois.map((r) => [r.label, r.depthM])).toEqual([['copepod', 12], ['diatom', 12]]);
  });

  it('sums volume and replaces a window of concentrations as a whole', () => {
    const nav = store.navRepository();
    nav.insertVolumes([
      { tMs: T0, volumeM3: 0.25, source: 'swept' },
      { tMs: T0 + 59_999, volumeM3: 0.5, source: 'swept', depthM: 3 },
      { tMs: T0 + 60_000, volumeM3: 1, source: 'swept' },
    ]);
    expect(nav.volumeSum(T0, T0 + 60_000)).toBe(0.75);
    expect(nav.volumesWithoutDepth(0, Number.MAX_SAFE_INTEGER, 10).map((v) => v.volumeM3)).toEqual([0.25, 1]);
    nav.setVolumeDepths(nav.volumesWithoutDepth(0, Number.MAX_SAFE_INTEGER, 10).map((v) => ({ id: v.id, depthM: 7 })));
    expect(nav.volumesWithoutDepth(0, Number.MAX_SAFE_INTEGER, 10)).toEqual([]);
    const row = { windowMs: 60_000, windowStart: T0, windowEnd: T0 + 60_000, binM: 5, depthMinM: 0, depthMaxM: 5, label: 'copepod', count: 3, volumeM3: 0.75, perM3: 4, lat: null, lon: null, computedAt: T0 };
    nav.replaceConcentrations(60_000, T0, [row, { ...row, label: 'diatom', count: 0, perM3: 0 }]);
    nav.replaceConcentrations(60_000, T0, [row]);
    expect(nav.concentrations(60_000, T0, 5)).toEqual([row]);
  });
});
