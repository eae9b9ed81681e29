// The shipped reference set (models/reference): its evaluation images come from the held-out part
// of the shipped members' split (never trained on), its replay images from the training part, it
// stays small, it is enough for the gate's default minimum, and it credits its source.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaults } from '../../src/config/config.js';
import { readDataset } from '../../src/learn/dataset.js';
import { ndsbTrainDir, REPO_ROOT } from './helpers.js';

const REFERENCE = path.join(REPO_ROOT, 'models/reference');
const SPLIT = path.join(REPO_ROOT, 'models/splits/5b6871bdcda4-s1-v15');
const list = (name: string) => new Set(readFileSync(path.join(SPLIT, name), 'utf8').split('\n').filter((l) => l !== ''));

describe('models/reference', () => {
  it('evaluates on held-out images only and replays training images only, a few per class of all 121', async () => {
    const evalSet = await readDataset(path.join(REFERENCE, 'eval'));
    const replay = await readDataset(path.join(REFERENCE, 'replay'));
    const validation = list('validation.txt');
    const train = list('train.txt');
    expect(evalSet.items.filter((i) => !validation.has(i.rel))).toEqual([]);
    expect(replay.items.filter((i) => !train.has(i.rel))).toEqual([]);
    expect(evalSet.classes).toHaveLength(121);
    expect(replay.classes).toHaveLength(121);
    const perClass = (items: { label: string }[]) => {
      const n = new Map<string, number>();
      for (const i of items) n.set(i.label, (n.get(i.label) ?? 0) + 1);
      return Math.max(...n.values());
    };
    expect(perClass(evalSet.items)).toBeLessThanOrEqual(8);
    expect(perClass(replay.items)).toBeLessThanOrEqual(5);
    // Enough images of known classes for the gate's default minimum.
    expect(evalSet.items.length).toBeGreaterThanOrEqual(defaults().finetune.minEvalImages);
    const bytes = [...evalSet.items, ...replay.items].reduce((a, i) => a + i.bytes, 0);
    expect(bytes).toBeLessThan(4_000_000);
    // Copied unchanged from the NDSB images, where this machine has them.
    const ndsb = ndsbTrainDir();
    if (ndsb) for (const i of [...evalSet.items.slice(0, 50), ...replay.items.slice(0, 50)]) expect(statSync(path.join(ndsb, i.rel)).size).toBe(i.bytes);
  });

  it('credits the NDSB data', () => {
    const readme = readFileSync(path.join(REFERENCE, 'README.md'), 'utf8');
    expect(readme).toContain('PlanktonSet 1.0');
    expect(readme).toContain('Accession 0127422');
    expect(existsSync(path.join(REFERENCE, 'eval'))).toBe(true);
  });
});
