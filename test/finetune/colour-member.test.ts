// Fine-tuning aboard a member that reads R, G and B (input.channels 3): the head on ONNX Runtime
// features (finetune.layers "head") and every layer with TensorFlow.js ("all") both read the
// labelled frames in colour, learn the labelled class, and write a 3-channel version whose
// model.onnx ONNX Runtime loads. Real fixture images, a colour camera.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EnsembleFile, MemberMeta } from '../../src/classify/meta.js';
import { folderIO, readMeta, verifyChecksums, writeMeta } from '../../src/classify/model-files.js';
import { convertVersion } from '../../src/classify/onnx-convert.js';
import { memberIo, OnnxSession, startOnnxRuntime } from '../../src/classify/onnx-runtime.js';
import { defaults } from '../../src/config/config.js';
import { initBackend } from '../../src/engine/backend.js';
import { jobSettings, runFinetuneJob, type FinetuneJob, type JobLabel } from '../../src/finetune/job.js';
import { buildModel } from '../../src/learn/architectures.js';
import { loadImageTable, tableRows } from '../../src/learn/image-cache.js';
import { DEFAULT_PREPROCESS } from '../../src/preprocess/prepare.js';
import type { CameraProfile } from '../../src/preprocess/camera.js';
import { fixtureImages } from '../helpers/images.js';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/ndsb');
const CAMERA: CameraProfile = { polarity: 'bright-field', colour: 'rgb', pixelSizeUm: 0 };
const images = fixtureImages();
const labels = (cls: string): JobLabel[] => images.filter((i) => i.label === cls).map((i) => ({ sha256: i.sha256, label: i.label, file: path.join(FIXTURES, i.label, i.name) }));
const KNOWN = ['acantharia_protist', 'chaetognath_other', 'copepod_cyclopoid_oithona_eggs', 'detritus_other', 'hydromedusae_solmaris', 'protist_other', 'trichodesmium_puff'];
let tmp = '';

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'pw-finetune-colour-'));
  process.env.PLANKWATCH_CACHE_DIR = path.join(tmp, 'cache');
  await initBackend('wasm');
  await startOnnxRuntime({ providers: 'cpu', threads: 1 });
});
afterAll(async () => rm(tmp, { recursive: true, force: true }));

/** An untrained 3-channel tiny member, with its model.onnx, as `train --channels 3` leaves one. */
async function colourMember(modelsDir: string): Promise<EnsembleFile> {
  const model = buildModel('pw-tiny-32', { numClasses: KNOWN.length, seed: 2, channels: 3 });
  const dir = path.join(modelsDir, 'tiny', 'v1');
  await model.save(folderIO(dir));
  model.dispose();
  const meta: MemberMeta = {
    name: 'tiny', version: 'v1', classes: KNOWN, input: { size: 32, channels: 3 }, preprocessing: DEFAULT_PREPROCESS, architecture: 'pw-tiny-32',
    training: { command: 'test', seed: 2, dataFingerprint: 'none' }, metrics: {}, parent: null, createdAt: '2026-12-07T00:00:00Z', camera: { ...CAMERA, canonical: 'bright-field' },
  };
  await writeMeta(dir, meta);
  await convertVersion(dir);
  return { version: 'E1', voting: 'soft', members: [{ name: 'tiny', version: 'v1' }] };
}

/** Share of the labelled images whose top class in the version's model.onnx is `cls`. */
async function onnxTop1(dir: string, list: JobLabel[], cls: string): Promise<number> {
  const meta = await readMeta(dir);
  const table = await loadImageTable(list.map((l, n) => ({ file: l.file, rel: `${n}`, label: l.label, bytes: 0 })), 32, meta.preprocessing, { cache: false, camera: CAMERA, channels: 3 });
  const session = await OnnxSession.create(await readFile(path.join(dir, 'model.onnx')), 'tiny', 32, meta.classes.length, memberIo(meta));
  const probs = await session.run(tableRows(table, 0, list.length), list.length);
  await session.release();
  const k = meta.classes.length;
  const c = meta.classes.indexOf(cls);
  let hits = 0;
  for (let r = 0; r < list.length; r++) {
    const row = Array.from(probs.subarray(r * k, (r + 1) * k));
    if (row.indexOf(Math.max(...row)) === c) hits++;
  }
  return hits / list.length;
}

describe('fine-tuning aboard a member that reads colour', () => {
  for (const layers of ['head', 'all'] as const) {
    it(`layers "${layers}": learns the labelled class and writes a 3-channel version`, async () => {
      const modelsDir = path.join(tmp, layers);
      const ensemble = await colourMember(modelsDir);
      const train = labels('chaetognath_other');
      const before = await onnxTop1(path.join(modelsDir, 'tiny', 'v1'), train, 'chaetognath_other');
      const job: FinetuneJob = {
        runId: 1, modelsDir, ensemble, version: 'ft1', train, evalLabels: labels('detritus_other'), evalData: null, referenceData: null, replayData: FIXTURES, seed: 5,
        ...jobSettings({ ...defaults().finetune, backend: 'wasm', niceness: 0, maxMinutes: 0 }),
        replayPerClass: 4, epochs: 8, batchSize: 8, learningRate: 0.01, layers, keepOldClasses: false, camera: CAMERA,
      };
      await runFinetuneJob(job);
      const dir = path.join(modelsDir, 'tiny', 'ft1');
      const meta = await readMeta(dir);
      expect(meta.input).toEqual({ size: 32, channels: 3 });
      expect(await verifyChecksums(dir, meta)).toEqual([]);
      const model = await tfl.loadLayersModel(folderIO(dir));
      expect(model.inputs[0]!.shape).toEqual([null, 32, 32, 3]);
      model.dispose();
      const after = await onnxTop1(dir, train, 'chaetognath_other');
      // Measured: 0 of 12 before, 11 of 12 ("head") and 9 of 12 ("all") after.
      expect(after).toBeGreaterThanOrEqual(before + 0.5);
    }, 120_000);
  }
});
