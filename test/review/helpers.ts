// A real store on a temp file with classified frames of known uncertainty, for review tests.
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { silentLogger } from '../../src/log.js';
import { ReviewStore } from '../../src/review/review-store.js';
import { Store } from '../../src/store/store.js';
import type { ClassifiedFrame } from '../../src/types.js';
import { fixtureImages } from '../helpers/images.js';
import { tempDir } from '../store/helpers.js';

export const T0 = Date.UTC(2026, 10, 28, 20, 0, 0);

export interface Seeded {
  dir: string;
  watchDir: string;
  archiveDir: string;
  store: Store;
  review: ReviewStore;
  /** sha256 by index, in insertion order; frame i has disagreement i % 3 / 2 and margin (i + 1) / 100. */
  shas: string[];
  labels: string[];
  cleanup: () => void;
}

/** `n` real fixture images stored as classified; the first half archived, the rest in the watch folder. */
export function seedStore(n = 12, classes = ['copepod', 'detritus', 'protist']): Seeded {
  const { dir, cleanup } = tempDir('review');
  const watchDir = path.join(dir, 'incoming');
  const archiveDir = path.join(dir, 'archive');
  const store = new Store({ path: path.join(dir, 'pw.db'), countsWindowMs: 60_000, logger: silentLogger(), now: () => T0 });
  store.open();
  const images = fixtureImages().slice(0, n);
  const batch: ClassifiedFrame[] = images.map((img, i) => {
    const relPath = `cast-1/${img.name}`;
    const target = path.join(i < n / 2 ? archiveDir : watchDir, relPath);
    mkdirSync(path.dirname(target), { recursive: true });
    copyFileSync(path.join(import.meta.dirname, '../fixtures/ndsb', img.label, img.name), target);
    const label = classes[i % classes.length]!;
    const second = classes[(i + 1) % classes.length]!;
    const p = 0.5 + (i + 1) / 200;
    return {
      frame: { file: { path: target, relPath, sha256: img.sha256, bytes: img.bytes.length, arrivedAt: T0 + i * 1000 }, width: 40, height: 30, area: 300, format: 'jpeg', inputs: new Map() },
      prediction: {
        label,
        probability: p,
        margin: (i + 1) / 100,
        disagreement: (i % 3) / 2,
        topK: [{ label, probability: p }, { label: second, probability: p - (i + 1) / 100 }],
        members: [{ member: 'm1', version: 'v1', topK: [{ label, probability: p }] }],
        ensembleVersion: 'e1',
      },
      classifiedAt: T0 + i * 1000,
    };
  });
  store.recordClassified(batch);
  let clock = T0 + 3_600_000;
  const review = new ReviewStore({ repository: store.reviewRepository(), knownClasses: () => classes, now: () => clock++ });
  return {
    dir,
    watchDir,
    archiveDir,
    store,
    review,
    shas: images.map((i) => i.sha256),
    labels: batch.map((b) => b.prediction.label),
    cleanup: () => {
      store.close();
      cleanup();
    },
  };
}
