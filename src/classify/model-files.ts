// Saving and loading TensorFlow.js models as plain files (model.json + weights.bin),
// without tfjs-node's file:// handler, so the same code works on every backend.
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type * as tfc from '@tensorflow/tfjs-core';
import type { MemberMeta } from './meta.js';

type IOHandler = tfc.io.IOHandler;
type ModelArtifacts = tfc.io.ModelArtifacts;

const MODEL_JSON = 'model.json';
const WEIGHTS_BIN = 'weights.bin';

/** An IOHandler that reads and writes `model.json` and `weights.bin` in a folder. */
export function folderIO(dir: string): IOHandler {
  return {
    async save(artifacts: ModelArtifacts) {
      await mkdir(dir, { recursive: true });
      const weights = artifacts.weightData
        ? Buffer.concat((Array.isArray(artifacts.weightData) ? artifacts.weightData : [artifacts.weightData]).map((b) => Buffer.from(b)))
        : Buffer.alloc(0);
      const modelJson = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        trainingConfig: artifacts.trainingConfig,
        weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? [] }],
      };
      await atomicWrite(path.join(dir, WEIGHTS_BIN), weights);
      await atomicWrite(path.join(dir, MODEL_JSON), Buffer.from(JSON.stringify(modelJson)));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weights.length } };
    },
    async load() {
      const modelJson = JSON.parse(await readFile(path.join(dir, MODEL_JSON), 'utf8')) as {
        modelTopology: object;
        format?: string;
        generatedBy?: string;
        convertedBy?: string;
        trainingConfig?: tfc.io.TrainingConfig;
        weightsManifest: { paths: string[]; weights: tfc.io.WeightsManifestEntry[] }[];
      };
      const weightSpecs: tfc.io.WeightsManifestEntry[] = [];
      const buffers: Buffer[] = [];
      for (const group of modelJson.weightsManifest) {
        weightSpecs.push(...group.weights);
        for (const p of group.paths) buffers.push(await readFile(path.join(dir, p)));
      }
      const all = Buffer.concat(buffers);
      const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.length);
      return {
        modelTopology: modelJson.modelTopology,
        format: modelJson.format,
        generatedBy: modelJson.generatedBy,
        convertedBy: modelJson.convertedBy,
        trainingConfig: modelJson.trainingConfig,
        weightSpecs,
        weightData,
      };
    },
  };
}

export async function readMeta(dir: string): Promise<MemberMeta> {
  return JSON.parse(await readFile(path.join(dir, 'meta.json'), 'utf8')) as MemberMeta;
}

/** Write meta.json with checksums of every other file in the folder. */
export async function writeMeta(dir: string, meta: MemberMeta): Promise<MemberMeta> {
  const checksums: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) {
    if (name === 'meta.json' || name.endsWith('.tmp')) continue;
    checksums[name] = createHash('sha256').update(await readFile(path.join(dir, name))).digest('hex');
  }
  const full = { ...meta, checksums };
  await atomicWrite(path.join(dir, 'meta.json'), Buffer.from(JSON.stringify(full, null, 2) + '\n'));
  return full;
}

/** Verify the checksums recorded in meta.json; returns the names that do not match. */
export async function verifyChecksums(dir: string, meta: MemberMeta): Promise<string[]> {
  const bad: string[] = [];
  for (const [name, sum] of Object.entries(meta.checksums ?? {})) {
    const actual = createHash('sha256').update(await readFile(path.join(dir, name))).digest('hex');
    if (actual !== sum) bad.push(name);
  }
  return bad;
}

async function atomicWrite(file: string, data: Buffer): Promise<void> {
  const tmp = `${file}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}
