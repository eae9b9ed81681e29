// Test models for the classify stage's plumbing: tiny CNNs with fixed seeded weights, built here and
// saved in the model registry layout. They are untrained; never ship one.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import type { EnsembleFile, MemberMeta } from '../../src/classify/meta.js';
import { folderIO, writeMeta } from '../../src/classify/model-files.js';
import { DEFAULT_PREPROCESS } from '../../src/preprocess/prepare.js';
import { preprocessFrame } from '../../src/preprocess/preprocess.js';
import type { PreparedFrame, PreprocessSpec } from '../../src/types.js';

export interface TinyMember {
  name: string;
  version: string;
  classes: string[];
  size: number;
  seed: number;
  /** End in a linear layer (logits) instead of softmax. */
  logits?: boolean;
  /** How its input is prepared (default: DEFAULT_PREPROCESS). */
  preprocessing?: PreprocessSpec;
}

export async function tempModelsDir(): Promise<string> {
  return mkdtemp(path.join(tmpdir(), 'pw-classify-'));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Build and save one tiny conv + dense model with meta.json (and checksums) under modelsDir. */
export async function saveTinyMember(modelsDir: string, m: TinyMember): Promise<string> {
  if (tf.getBackend() !== 'cpu' && tf.getBackend() !== 'wasm') await tf.setBackend('cpu');
  const dir = path.join(modelsDir, m.name, m.version);
  const init = (offset: number) => tfl.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: m.seed * 10 + offset });
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({
        inputShape: [m.size, m.size, 1],
        filters: 4,
        kernelSize: 3,
        strides: 2,
        activation: 'relu',
        kernelInitializer: init(1),
        biasInitializer: init(2),
      }),
      tfl.layers.flatten(),
      tfl.layers.dense({
        units: m.classes.length,
        activation: m.logits ? 'linear' : 'softmax',
        kernelInitializer: init(3),
        biasInitializer: init(4),
      }),
    ],
  });
  await model.save(folderIO(dir));
  model.dispose();
  const meta: MemberMeta = {
    name: m.name,
    version: m.version,
    classes: m.classes,
    input: { size: m.size, channels: 1 },
    preprocessing: m.preprocessing ?? DEFAULT_PREPROCESS,
    architecture: 'test-tiny-conv',
    training: { command: 'none (untrained test model)', seed: m.seed, dataFingerprint: 'none' },
    metrics: { top1: 0.5, evaluatedOn: 0, note: 'untrained' },
    parent: null,
    createdAt: '2026-01-01T00:00:00Z',
  };
  await writeMeta(dir, meta);
  return dir;
}

export async function writeEnsemble(modelsDir: string, ensemble: EnsembleFile, name = 'ensemble.json'): Promise<string> {
  const file = path.join(modelsDir, name);
  await writeFile(file, JSON.stringify(ensemble, null, 2));
  return file;
}

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'ndsb');

/** The real NDSB fixture JPEGs, sorted. */
export async function fixtureImages(): Promise<string[]> {
  const out: string[] = [];
  for (const cls of (await readdir(FIXTURES)).sort()) {
    if (cls.endsWith('.md')) continue;
    for (const f of (await readdir(path.join(FIXTURES, cls))).sort()) if (f.endsWith('.jpg')) out.push(path.join(FIXTURES, cls, f));
  }
  return out;
}

/** Prepare fixture images with the real preprocess stage. */
export async function prepareFixtures(files: string[], inputs: { size: number; spec: PreprocessSpec }[]): Promise<PreparedFrame[]> {
  return Promise.all(
    files.map(async (file) => {
      const bytes = await readFile(file);
      const relPath = path.relative(FIXTURES, file).split(path.sep).join('/');
      return preprocessFrame({ path: file, relPath, sha256: relPath, bytes: bytes.length, arrivedAt: Date.now() }, bytes, {
        maxPixels: 10_000_000,
        inputs,
      });
    }),
  );
}
