// A member trained on one camera polarity keeps its accuracy on the other: the shipped vgg48/v1
// (bright-field NDSB) scores the committed fixtures and their dark-field versions (gray, and
// tinted colour) alike once the camera is declared, through the training image path
// (loadImageTable, what train, evaluate and fine-tuning read) and the shipped weights.
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, cpSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cameraMismatch, memberCamera } from '../../src/classify/camera-check.js';
import { loadEnsemble } from '../../src/classify/ensemble-loader.js';
import type { MemberMeta } from '../../src/classify/meta.js';
import { folderIO, readMeta } from '../../src/classify/model-files.js';
import { PlankwatchError } from '../../src/errors.js';
import { initBackend } from '../../src/engine/backend.js';
import type { LabelledImage } from '../../src/learn/dataset.js';
import { loadImageTable } from '../../src/learn/image-cache.js';
import { predictTable } from '../../src/learn/trainer.js';
import type { CameraProfile } from '../../src/preprocess/camera.js';
import { labelItem, loadReplayTable } from '../../src/finetune/job-data.js';
import { polarityWarning, samplePolarity } from '../../src/learn/polarity-sample.js';
import { darkFieldColour, darkFieldGray } from '../helpers/cameras.js';
import { fixtureImages, sha256 } from '../helpers/images.js';

const MEMBER = path.resolve('models/vgg48/v1');
const work = mkdtempSync(path.join(tmpdir(), 'pw-camera-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const profile = (polarity: CameraProfile['polarity'], colour: CameraProfile['colour'] = 'gray', pixelSizeUm = 0): CameraProfile => ({ polarity, colour, pixelSizeUm });

/** The fixtures as three cameras give them: NDSB's own, dark-field gray, dark-field colour. */
async function cameraSets(): Promise<{ bright: LabelledImage[]; darkGray: LabelledImage[]; darkColour: LabelledImage[] }> {
  const sets = { bright: [] as LabelledImage[], darkGray: [] as LabelledImage[], darkColour: [] as LabelledImage[] };
  for (const img of fixtureImages()) {
    for (const [set, make] of [['bright', async (b: Buffer) => b], ['darkGray', darkFieldGray], ['darkColour', darkFieldColour]] as const) {
      const bytes = await make(img.bytes);
      const rel = `${set}/${img.label}/${img.name}.${set === 'bright' ? 'jpg' : 'png'}`;
      const file = path.join(work, rel);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, bytes);
      sets[set].push({ file, rel, label: img.label, bytes: bytes.length });
    }
  }
  return sets;
}

describe('a bright-field member on a dark-field camera', () => {
  let meta: MemberMeta;
  let model: tfl.LayersModel;
  let sets: Awaited<ReturnType<typeof cameraSets>>;
  beforeAll(async () => {
    await initBackend('wasm');
    meta = await readMeta(MEMBER);
    model = await tfl.loadLayersModel(folderIO(MEMBER));
    sets = await cameraSets();
  });
  afterAll(() => model?.dispose());

  const score = async (items: LabelledImage[], camera: CameraProfile) => {
    const table = await loadImageTable(items, meta.input.size, meta.preprocessing, { cache: false, camera });
    const probs = predictTable(model, table);
    const k = meta.classes.length;
    const predicted = items.map((_, i) => {
      let best = 0;
      for (let c = 1; c < k; c++) if (probs[i * k + c]! > probs[i * k + best]!) best = c;
      return meta.classes[best]!;
    });
    return { table, predicted, top1: predicted.filter((p, i) => p === items[i]!.label).length / items.length };
  };

  it('gives the same predictions and accuracy on the dark-field images as on the originals, once the camera is declared', async () => {
    const bright = await score(sets.bright, profile('bright-field'));
    const dark = await score(sets.darkGray, profile('dark-field'));
    const auto = await score(sets.darkGray, profile('auto'));
    expect(bright.top1).toBeGreaterThan(0.5);
    expect(dark.predicted).toEqual(bright.predicted);
    expect(auto.predicted).toEqual(bright.predicted);
    expect(dark.top1).toBe(bright.top1);
    // The colour camera's tint dims the organisms (its luminance is about 0.75 of the gray): three
    // predictions in four the same (the rest mostly between alike classes), accuracy within three
    // images of the original's. Fine-tuning on the camera's own images closes the rest.
    const colour = await score(sets.darkColour, profile('dark-field', 'rgb'));
    const agree = colour.predicted.filter((p, i) => p === bright.predicted[i]).length / sets.bright.length;
    expect(agree).toBeGreaterThanOrEqual(0.7);
    expect(Math.abs(colour.top1 - bright.top1)).toBeLessThanOrEqual(3 / sets.bright.length + 1e-9);
  });

  it('loses most of it when the dark-field images are read as bright-field (as before camera profiles)', async () => {
    const bright = await score(sets.bright, profile('bright-field'));
    const wrong = await score(sets.darkGray, profile('bright-field'));
    expect(wrong.top1).toBeLessThan(bright.top1 / 2);
  });

  it('records the camera in meta.json, and refuses a camera whose pixels would change the sizes it learnt (PW_E_CAMERA_PROFILE)', async () => {
    expect(cameraMismatch(meta, profile('dark-field', 'rgb', 10))).toBeNull(); // its pixel size is not recorded
    const dir = path.join(work, 'models', 'vgg48', 'cam');
    cpSync(MEMBER, dir, { recursive: true });
    const recorded = { ...JSON.parse(readFileSync(path.join(dir, 'meta.json'), 'utf8')), version: 'cam', camera: memberCamera(profile('bright-field', 'gray', 10)) };
    writeFileSync(path.join(dir, 'meta.json'), JSON.stringify(recorded));
    const ensemble = { version: 'cam-1', voting: 'soft' as const, members: [{ name: 'vgg48', version: 'cam' }] };
    const models = path.join(work, 'models');
    await expect(loadEnsemble(ensemble, models, profile('dark-field', 'rgb', 11))).resolves.toBeDefined();
    const refused = await loadEnsemble(ensemble, models, profile('bright-field', 'gray', 20)).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(PlankwatchError);
    expect((refused as PlankwatchError).code).toBe('PW_E_CAMERA_PROFILE');
    expect((refused as PlankwatchError).message).toMatch(/trained on 10 µm pixels.*camera\.pixelSizeUm is 20.*2\.0× smaller/);
    // A member that enlarges organisms to fill its input learnt no size: it serves any pixel size.
    const fit = { ...recorded, preprocessing: { ...recorded.preprocessing, noUpscale: false } } as MemberMeta;
    expect(cameraMismatch(fit, profile('bright-field', 'gray', 20))).toBeNull();
  });

  it('fine-tuning on board reads the ship\'s dark-field frames through its camera, and the shipped (bright-field) reference images by their own polarity', async () => {
    const dark = profile('dark-field');
    const half = sets.darkGray.length / 2;
    // Labelled frames of the ship (rows "labels/<sha256>", read only if they still hold their bytes) and reference files, interleaved.
    const own = sets.darkGray.slice(0, half).map((i) => labelItem({ file: i.file, sha256: sha256(readFileSync(i.file)), label: i.label }));
    const reference = sets.bright.slice(half);
    const items = own.flatMap((o, k) => (reference[k] ? [o, reference[k]!] : [o]));
    const mixed = await loadReplayTable(items, meta.input.size, meta.preprocessing, dark, { cache: false });
    const originals = items.map((i) => (i.rel.startsWith('labels/') ? sets.bright[own.indexOf(i)]! : i));
    const expected = await loadImageTable(originals, meta.input.size, meta.preprocessing, { cache: false });
    expect(Buffer.from(mixed.pixels).equals(Buffer.from(expected.pixels))).toBe(true);
  });

  it('warns when the images\' borders contradict the declared polarity', async () => {
    const dark = await samplePolarity(sets.darkGray, 16);
    expect(dark).toEqual({ 'bright-field': 0, 'dark-field': 16 });
    expect(polarityWarning(dark, profile('bright-field'))).toMatch(/16 of 16 sampled images look dark-field.*--polarity dark-field/);
    expect(polarityWarning(dark, profile('dark-field'))).toBeNull();
    expect(polarityWarning(dark, profile('auto'))).toBeNull();
    expect(polarityWarning(await samplePolarity(sets.bright, 16), profile('bright-field'))).toBeNull();
  });
});
