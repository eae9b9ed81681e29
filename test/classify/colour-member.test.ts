// A member that reads R, G and B, in the classify stage: the shipped gray p4-fit48/v1 widened to
// three channels (its first convolution repeated over them, divided by three) classifies the NDSB
// fixtures, decoded in colour (R = G = B), as the gray member does, through the real preprocess
// stage, inference threads, TTA and both backends (TensorFlow.js wasm and ONNX Runtime on its
// exported model.onnx). On a gray camera it is refused with PW_E_CAMERA_PROFILE.
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Classifier, type ClassifierOptions } from '../../src/classify/classifier.js';
import type { MemberMeta } from '../../src/classify/meta.js';
import { folderIO, readMeta, writeMeta } from '../../src/classify/model-files.js';
import { writeOnnxBeside } from '../../src/classify/onnx-export.js';
import { initBackend } from '../../src/engine/backend.js';
import { transferModel } from '../../src/learn/transfer.js';
import { silentLogger } from '../../src/log.js';
import { preprocessFrame } from '../../src/preprocess/preprocess.js';
import type { CameraProfile } from '../../src/preprocess/camera.js';
import type { EnsemblePrediction, IncomingFile } from '../../src/types.js';
import { darkFieldColour } from '../helpers/cameras.js';
import { fixtureImages, sha256 } from '../helpers/images.js';

const PARENT = path.resolve('models/p4-fit48/v1');
const work = mkdtempSync(path.join(tmpdir(), 'pw-colour-member-'));
const models = path.join(work, 'models');
const running: Classifier[] = [];
afterAll(async () => {
  await Promise.allSettled(running.map((c) => c.stop()));
  rmSync(work, { recursive: true, force: true });
});
const GRAY: CameraProfile = { polarity: 'bright-field', colour: 'gray', pixelSizeUm: 0 };
const RGB: CameraProfile = { polarity: 'bright-field', colour: 'rgb', pixelSizeUm: 0 };

beforeAll(async () => {
  await initBackend('wasm');
  cpSync(PARENT, path.join(models, 'p4-fit48', 'v1'), { recursive: true });
  const parent = await readMeta(PARENT);
  const { model } = await transferModel(PARENT, parent.classes, { seed: 1, channels: 3 });
  const dir = path.join(models, 'colour', 'v1');
  await model.save(folderIO(dir));
  model.dispose();
  await writeOnnxBeside(dir, 'colour/v1');
  const meta: MemberMeta = { ...parent, name: 'colour', version: 'v1', input: { size: parent.input.size, channels: 3 }, camera: { ...RGB, canonical: 'bright-field' }, parent: 'p4-fit48/v1' };
  delete meta.checksums;
  await writeMeta(dir, meta);
  for (const [name, member] of [['gray', 'p4-fit48'], ['colour', 'colour']]) {
    writeFileSync(path.join(models, `${name}.json`), JSON.stringify({ version: name, voting: 'soft', tta: ['identity', 'rot90', 'rot45'], members: [{ name: member, version: 'v1' }] }));
  }
}, 120_000);

async function classifier(ensemble: string, backend: ClassifierOptions['backend'], camera: CameraProfile): Promise<Classifier> {
  const c = new Classifier({ ensembleFile: path.join(models, `${ensemble}.json`), modelsDir: models, backend, workers: 1, onnxWorkers: 1, maxBatch: 8, maxWaitMs: 5, topK: 3, camera, logger: silentLogger() });
  running.push(c);
  await c.start();
  return c;
}

/** Each image through the preprocess stage for `c`'s inputs, then classified. */
async function classify(c: Classifier, images: { name: string; bytes: Buffer }[], camera: CameraProfile): Promise<EnsemblePrediction[]> {
  return Promise.all(images.map(async (img) => {
    const file: IncomingFile = { path: img.name, relPath: img.name, sha256: sha256(img.bytes), bytes: img.bytes.length, arrivedAt: 0, mtimeMs: 0 };
    return c.classify(await preprocessFrame(file, img.bytes, { maxPixels: 4_000_000, inputs: c.inputs(), camera }));
  }));
}

describe('a member widened from gray to R, G, B', () => {
  const images = fixtureImages().filter((_, i) => i % 6 === 0);

  for (const backend of ['wasm', 'onnx'] as const) {
    it(`${backend}: classifies gray images read in colour as its gray parent does`, async () => {
      const gray = await classifier('gray', backend, GRAY);
      const colour = await classifier('colour', backend, RGB);
      expect(colour.inputs()).toEqual([expect.objectContaining({ key: '48-rgb-fit', size: 48, channels: 3 })]);
      const theirs = await classify(gray, images, GRAY);
      const ours = await classify(colour, images, RGB);
      expect(ours.map((p) => p.label)).toEqual(theirs.map((p) => p.label));
      let worst = 0;
      ours.forEach((p, i) => {
        expect(p.topK.map((t) => t.label)).toEqual(theirs[i]!.topK.map((t) => t.label));
        p.topK.forEach((t, k) => (worst = Math.max(worst, Math.abs(t.probability - theirs[i]!.topK[k]!.probability))));
      });
      expect(worst).toBeLessThan(1e-5);
      // Colour images (a tinted dark-field camera) read in three channels: classified, not refused.
      const tinted = await Promise.all(images.slice(0, 4).map(async (img) => ({ name: `${img.name}.png`, bytes: await darkFieldColour(img.bytes) })));
      const dark = await classify(colour, tinted, { ...RGB, polarity: 'dark-field' });
      for (const p of dark) expect(p.probability).toBeGreaterThan(0);
    }, 120_000);
  }

  it('is refused on a gray camera, with what to do', async () => {
    const c = new Classifier({ ensembleFile: path.join(models, 'colour.json'), modelsDir: models, backend: 'wasm', workers: 0, maxBatch: 8, maxWaitMs: 5, topK: 3, camera: GRAY, logger: silentLogger() });
    await expect(c.start()).rejects.toMatchObject({ code: 'PW_E_CAMERA_PROFILE', message: expect.stringMatching(/reads colour.*camera\.colour is gray.*Set camera\.colour to rgb/) });
    await c.stop().catch(() => undefined);
    expect(JSON.parse(await readFile(path.join(models, 'colour', 'v1', 'meta.json'), 'utf8')).input.channels).toBe(3);
  });
});
