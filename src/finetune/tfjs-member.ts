// Fine-tuning one member's network with TensorFlow.js (finetune.layers "all" or "top", or "head"
// when its features cannot come from ONNX Runtime): the layers that learn, its head grown for new
// classes, the labels repeated beside the replay sample, then both versions scored on the gate set.
import * as tfl from '@tensorflow/tfjs-layers';
import type { MemberMeta } from '../classify/meta.js';
import { folderIO } from '../classify/model-files.js';
import { writeOnnxBeside } from '../classify/onnx-export.js';
import { NO_AUGMENT } from '../learn/augment.js';
import type { LabelledImage } from '../learn/dataset.js';
import type { ImageTable } from '../learn/image-cache.js';
import { deriveSeed } from '../learn/random.js';
import { predictTable, train } from '../learn/trainer.js';
import { growHead } from './head.js';
import { ABOARD_AUGMENT } from './job-data.js';
import type { FinetuneJob } from './job.js';
import { calibrateNewClasses, keepOldColumns, prepareForFinetune } from './network.js';

/** One member's images and settings, for training its network with TensorFlow.js. */
export interface TfjsMember {
  id: string;
  member: string;
  dir: string;
  outDir: string;
  meta: MemberMeta;
  newClasses: string[];
  numClasses: number;
  labelItems: LabelledImage[];
  labelTable: ImageTable;
  /** Each label image's class index (in the grown head). */
  labelClasses: Int32Array;
  replayItems: LabelledImage[];
  replayTable: ImageTable;
  /** Each replay image's class index. */
  replayClasses: Int32Array;
  repeat: number;
  evalTable: ImageTable;
  batchSize: number;
}

/**
 * Train the member's network with TensorFlow.js (the layers finetune.layers names learn, the
 * images augmented afresh each epoch) and write the new version's model.json and model.onnx.
 */
export async function trainWithTfjs(
  job: FinetuneJob,
  t: TfjsMember,
  onProgress: (p: { epoch: number; epochs: number; batch: number; batches: number; loss: number }) => void,
  log: (line: string) => void,
): Promise<{ epochs: number; finalLoss: number | null; before: Float32Array; after: Float32Array; backend: string }> {
  const { meta, labelItems, replayItems, repeat } = t;
  const size = meta.input.size;
  const spec = meta.preprocessing;
  const current = await tfl.loadLayersModel(folderIO(t.dir));
  const model = t.newClasses.length > 0 ? await growHead(current, t.newClasses.length, deriveSeed(job.seed, 'head', t.member)) : await tfl.loadLayersModel(folderIO(t.dir));
  try {
    const restore = prepareForFinetune(model, job.layers);
    const rows = labelItems.length * repeat + replayItems.length;
    const channels = meta.input.channels;
    const one = size * size * channels;
    const pixels = new Uint8Array(rows * one);
    const labels = new Int32Array(rows);
    let r = 0;
    for (let k = 0; k < repeat; k++) {
      labelItems.forEach((_, i) => {
        pixels.set(t.labelTable.pixels.subarray(i * one, (i + 1) * one), r * one);
        labels[r++] = t.labelClasses[i]!;
      });
    }
    replayItems.forEach((_, i) => {
      pixels.set(t.replayTable.pixels.subarray(i * one, (i + 1) * one), r * one);
      labels[r++] = t.replayClasses[i]!;
    });
    const table: ImageTable = { size, ...(channels === 3 ? { channels } : {}), pixels, rels: [...labelItems.flatMap((i) => Array<string>(repeat).fill(i.rel)), ...replayItems.map((i) => i.rel)] };
    const fill = spec.invert ? 1 - spec.background / 255 : spec.background / 255;
    const result = await train(
      model,
      { train: { table, labels }, validation: null, numClasses: t.numClasses },
      {
        epochs: job.epochs,
        batchSize: t.batchSize,
        learningRate: job.learningRate,
        finalLearningRateFraction: 0.05,
        weightDecay: 0,
        seed: deriveSeed(job.seed, 'train', t.member, job.runId),
        classWeights: job.classWeights,
        augment: job.augment ? ABOARD_AUGMENT : NO_AUGMENT,
        patience: 0,
        maxMinutes: job.maxMinutes,
        fill,
      },
      { onProgress },
    );

    restore();
    if (job.keepOldClasses && job.layers === 'head' && t.newClasses.length > 0) keepOldColumns(model, current, meta.classes.length);
    const calibration = t.newClasses.length > 0 && replayItems.length > 0 ? calibrateNewClasses(model, t.replayTable, t.replayClasses, meta.classes.length, job.newClassFalsePositive) : [];
    if (calibration.length > 0) log(`${t.member}: new-class bias lowered by ${calibration.map((c) => c.toFixed(2)).join(', ')}`);

    // Score old and new member on the evaluation set at this member's input.
    const before = predictTable(current, t.evalTable);
    const after = predictTable(model, t.evalTable);
    await model.save(folderIO(t.outDir));
    await writeOnnxBeside(t.outDir, `${t.member}/${job.version}`, log);
    const last = result.epochs[result.epochs.length - 1];
    return { epochs: result.epochs.length, finalLoss: last?.trainLoss ?? null, before, after, backend: '' };
  } finally {
    current.dispose();
    model.dispose();
  }
}
