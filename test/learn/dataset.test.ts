import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSplit, overlap, readDataset, saveSplit, stratifiedSplit } from '../../src/learn/dataset.js';

const FIXTURES = path.join('test', 'fixtures', 'ndsb');

describe('dataset and split', () => {
  it('reads a folder per class with a stable fingerprint', async () => {
    const a = await readDataset(FIXTURES);
    expect(a.items.length).toBe(96);
    expect(a.classes.length).toBe(8);
    expect((await readDataset(FIXTURES)).fingerprint).toBe(a.fingerprint);
  });

  it('reads a CSV of path and label', async () => {
    const ds = await readDataset(FIXTURES);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pw-csv-'));
    const csv = ['path,label', ...ds.items.slice(0, 10).map((i) => `${path.relative(dir, i.file)},${i.label}`)].join('\n');
    await writeFile(path.join(dir, 'labels.csv'), csv);
    const fromCsv = await readDataset(path.join(dir, 'labels.csv'));
    expect(fromCsv.items.length).toBe(10);
    expect(fromCsv.items.map((i) => i.label).sort()).toEqual(ds.items.slice(0, 10).map((i) => i.label).sort());
  });

  it('splits every class, never puts an image on both sides, and is seeded', async () => {
    const ds = await readDataset(FIXTURES);
    const split = stratifiedSplit(ds, 0.25, 42);
    expect(overlap(split.train, split.validation)).toEqual([]);
    expect(split.train.length + split.validation.length).toBe(96);
    for (const c of ds.classes) {
      const n = ds.items.filter((i) => i.label === c).length;
      const v = split.validation.filter((r) => r.startsWith(`${c}/`)).length;
      expect(v).toBe(Math.round(n * 0.25));
    }
    expect(stratifiedSplit(ds, 0.25, 42)).toEqual(split);
    expect(stratifiedSplit(ds, 0.25, 43).validation).not.toEqual(split.validation);
  });

  it('saves and reloads a split unchanged', async () => {
    const ds = await readDataset(FIXTURES);
    const split = stratifiedSplit(ds, 0.2, 1);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pw-split-'));
    await saveSplit(dir, split);
    expect(await loadSplit(dir)).toEqual(split);
  });
});
