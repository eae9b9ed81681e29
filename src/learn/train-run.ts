// One training run from data to a new model version folder: read the data, split (or reuse a
// saved split), prepare images through the inference path (cached), build or adapt the network,
// train, and write models/<member>/<version>/ with model.json, weights.bin and meta.json.
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { sameClassList } from '../classify/classes.js';
import type { MemberMeta } from '../classify/meta.js';
import { folderIO, readMeta, writeMeta } from '../classify/model-files.js';
import { writeOnnxBeside } from '../classify/onnx-export.js';
import { memberCamera } from '../classify/camera-check.js';
import { describeProfile, NDSB_CAMERA, type CameraProfile } from '../preprocess/camera.js';
import { DEFAULT_PREPROCESS } from '../preprocess/prepare.js';
import { isEcoTaxaExport, readEcoTaxaData, type EcoTaxaFilter } from './ecotaxa-data.js';
import { polarityWarning, samplePolarity } from './polarity-sample.js';
import type { PreprocessSpec } from '../types.js';
import { DEFAULT_AUGMENT, type AugmentOptions } from './augment.js';
import type { MixOptions } from './mix.js';
import { architectureInfo, buildModel, quarterTurnInvariant, countMacs, dropoutRate, setDropoutRate } from './architectures.js';
import { initBackend, type TrainingBackend } from '../engine/backend.js';
import { loadSplit, readDataset, saveSplit, stratifiedSplit, type Dataset, type Split } from './dataset.js';
import { calibrateIdentityNorms, startAsIdentity } from './identity-start.js';
import { loadImageTable, subTable } from './image-cache.js';
import { train, type ClassWeighting, type TrainConfig, type TrainData, type TrainHooks, type TrainResult } from './trainer.js';
import { cacheDir } from './image-cache.js';
import { transferModel, type HeadOrigin } from './transfer.js';
import { computeMetrics, headline } from './metrics.js';
import { teacherTargets, type TeacherRecord } from './teacher.js';
import { rotationTies, tieWeights, type RotationTies } from '../engine/rotation-ties.js';

export interface TrainRunOptions {
  data: string;
  member: string;
  architecture: string;
  /** Root of the model registry (default "models"). */
  modelsDir: string;
  version?: string;
  seed: number;
  validationFraction: number;
  /** Split folder to reuse or create (default <modelsDir>/splits/<fingerprint>-s<seed>-v<pct>). */
  split?: string;
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** The cosine schedule's final learning rate as a fraction of the first (default 0.02; 1: constant). */
  finalLearningRate?: number;
  /** Average the weights of every epoch from this one on (stochastic weight averaging; 0 or absent: off). */
  averageFrom?: number;
  weightDecay: number;
  classWeights: ClassWeighting;
  augment: AugmentOptions;
  /** Mix each batch's images in pairs (mixup or CutMix; absent: none). */
  mix?: MixOptions;
  patience: number;
  maxMinutes: number;
  resume: boolean;
  backend: TrainingBackend;
  /** Transfer learning: version folder of an existing model to start from. */
  from?: string;
  /** With `from`: train only the new head (true) or everything. */
  freeze?: boolean;
  /** With `from` and `freeze`: also train the top N convolution blocks. */
  unfreezeTop?: number;
  /**
   * Start the new architecture from another model's weights: every layer with the same name and
   * weight shapes is copied (a 48 px model's convolutions into a 64 px network), the rest is new.
   */
  initFrom?: string;
  /** Knowledge distillation: an ensemble file whose soft vote on the training images is mixed into the targets. */
  teacher?: string;
  /** With `teacher`: the teacher's share of each target (default 0.5). */
  distill?: number;
  /** Dropout rate around the dense layer (default: the architecture's, or the parent model's). */
  dropout?: number;
  preprocess?: PreprocessSpec;
  /** The camera the images come from (polarity, colour, pixel size); recorded in meta.json. Default: bright-field gray (NDSB). */
  camera?: CameraProfile;
  /** Input channels: 1 (gray; a colour camera's luminance) or 3 (R, G, B; needs a colour camera). Default: the parent's with --from, else 1. */
  channels?: 1 | 3;
  /** When options.data is an EcoTaxa export: which objects and classes to take (default: validated objects, every class). */
  ecotaxa?: EcoTaxaFilter;
  /** Head-first: epochs that train only the dense layers and the classifier before every layer learns (0: none). */
  headEpochs?: number;
  /** Learning rate of the head-only epochs (default: learningRate). */
  headLearningRate?: number;
  /** Linear warm-up of the learning rate, in epochs, after the head-only ones (0: none). */
  warmupEpochs?: number;
  /** With maxMinutes: fit the number of epochs to the time budget, so that the cosine schedule ends with it. */
  fitToTime?: boolean;
  /** The command line, recorded in meta.json. */
  command: string;
  hooks?: TrainHooks;
  log?: (line: string) => void;
}

/**
 * What trains the network in a run: this thread's trainer by default, or another with the same
 * contract (the data-parallel one of parallel/run.ts).
 */
export interface TrainEngine {
  /** Added to the backend log line, e.g. "4 worker threads". */
  label?: string;
  /** Backend to initialise instead of options.backend. */
  backend?: (requested: TrainingBackend) => TrainingBackend;
  /** Reads options.data (default readDataset: a folder per class or a CSV). */
  readData?: (source: string) => Promise<Dataset>;
  /** Throws when the engine cannot do what the options ask, before any work is done. */
  check?: (options: TrainRunOptions, parent: MemberMeta | null, classes: string[]) => void;
  fit: (model: tfl.LayersModel, data: TrainData, config: TrainConfig, hooks: TrainHooks) => Promise<TrainResult>;
  /** Extra fields recorded under meta.json `training`. */
  trainingMeta?: Record<string, unknown>;
}

const THIS_THREAD: TrainEngine = { fit: train };

export interface TrainRunResult {
  dir: string;
  meta: MemberMeta;
  result: TrainResult;
}

export function defaultVersion(now = new Date()): string {
  return now.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
}

export function defaultSplitDir(modelsDir: string, dataset: Dataset, seed: number, fraction: number): string {
  return path.join(modelsDir, 'splits', `${dataset.fingerprint.slice(0, 12)}-s${seed}-v${Math.round(fraction * 100)}`);
}

/** Reuse the split in `dir` (checking it belongs to this data) or create and save it. */
export async function ensureSplit(dataset: Dataset, dir: string, seed: number, fraction: number): Promise<Split> {
  if (existsSync(path.join(dir, 'split.json'))) {
    const split = await loadSplit(dir);
    if (split.dataFingerprint !== dataset.fingerprint) {
      throw new Error(`The split in ${dir} was made for other data (fingerprint ${split.dataFingerprint.slice(0, 12)}, data ${dataset.fingerprint.slice(0, 12)}).`);
    }
    return split;
  }
  const split = stratifiedSplit(dataset, fraction, seed);
  await saveSplit(dir, split);
  return split;
}

/**
 * Copy into `model` the weights of every layer of the model in `dir` that has the same name and
 * the same weight shapes (the classifier only when the classes are the same, in the same order).
 */
async function initialiseFrom(model: tfl.LayersModel, dir: string, classes: string[]): Promise<{ source: MemberMeta; copied: string[]; fresh: string[]; identity: string[] }> {
  const meta = await readMeta(dir);
  const source = await tfl.loadLayersModel(folderIO(dir));
  const sameClasses = sameClassList(meta.classes, classes);
  const copied: string[] = [];
  const fresh: string[] = [];
  const identity: string[] = [];
  for (const layer of model.layers) {
    const weights = layer.getWeights();
    if (weights.length === 0) continue;
    const from = source.layers.find((l) => l.name === layer.name);
    const theirs = from?.getWeights() ?? [];
    const fits = theirs.length === weights.length && theirs.every((w, i) => w.shape.join('x') === weights[i]!.shape.join('x'));
    if (fits && (layer.name !== 'logits' || sameClasses)) {
      layer.setWeights(theirs);
      copied.push(layer.name);
    } else if (!from && startAsIdentity(layer)) {
      // A layer the source lacks was inserted between trained ones (a deeper network); one it has
      // with other shapes (a wider network) keeps its random start.
      fresh.push(`${layer.name} (identity)`);
      identity.push(layer.name);
    } else {
      fresh.push(layer.name);
    }
  }
  source.dispose();
  if (copied.length === 0) throw new Error(`--init-from ${dir}: no layer of that model has the name and weight shapes of a layer of the new network.`);
  return { source: meta, copied, fresh, identity };
}

export async function runTraining(options: TrainRunOptions, engine: TrainEngine = THIS_THREAD): Promise<TrainRunResult> {
  const log = options.log ?? (() => {});
  const backend = await initBackend(engine.backend ? engine.backend(options.backend) : options.backend);
  log(`backend: ${backend.name} (${backend.packageName})${engine.label ? `, ${engine.label}` : ''}`);
  const dataset = isEcoTaxaExport(options.data) ? await readEcoTaxaData(options.data, options.ecotaxa, log) : await (engine.readData ?? readDataset)(options.data);
  const camera = options.camera ?? NDSB_CAMERA;
  if (options.channels === 3 && camera.colour !== 'rgb') throw new Error('--channels 3 reads R, G and B: declare the colour camera with --colour rgb (a gray camera has one channel to give).');
  log(`camera: ${describeProfile(camera)} (every image read in the canonical bright-field form)`);
  const polarityDoubt = polarityWarning(await samplePolarity(dataset.items), camera);
  if (polarityDoubt) log(polarityDoubt);
  log(`data: ${dataset.items.length} images, ${dataset.classes.length} classes, fingerprint ${dataset.fingerprint.slice(0, 12)}`);
  const splitDir = options.split ?? defaultSplitDir(options.modelsDir, dataset, options.seed, options.validationFraction);
  const split = await ensureSplit(dataset, splitDir, options.seed, options.validationFraction);
  log(`split: ${split.train.length} train, ${split.validation.length} validation (${splitDir})`);

  const info = architectureInfo(options.architecture);
  const spec = options.preprocess ?? DEFAULT_PREPROCESS;
  /** The teacher's share of each target (0: no teacher). */
  const distill = options.teacher ? (options.distill ?? 0.5) : 0;
  if (options.teacher && !(distill > 0 && distill <= 1)) throw new Error(`--distill must be above 0 and at most 1 (the teacher's share of each target), not ${distill}.`);
  if (options.from && options.preprocess) throw new Error('--scale and --from exclude each other: a fine-tuned model keeps its parent\'s preprocessing; to start from a model with another scale, use --init-from with the same --arch.');
  if (options.from && options.initFrom) throw new Error('--from and --init-from exclude each other: --from fine-tunes a model as it is, --init-from starts a new --arch from its layers.');
  /** The model this one was fine-tuned from (--from) or whose layers it started from (--init-from). */
  let parent: MemberMeta | null = null;
  let model: tfl.LayersModel;
  let inputSize = info.inputSize;
  /** Convolutions --init-from started as the identity: their batch norms are set once images are ready. */
  let identity: string[] = [];
  /** With --from and other classes: which of the new classifier's rows are the parent's. */
  let head: HeadOrigin | null = null;
  if (options.from) {
    engine.check?.(options, await readMeta(options.from), dataset.classes);
    const t = await transferModel(options.from, dataset.classes, options);
    if (options.channels !== undefined && options.channels !== t.parent.input.channels) log(`input: ${t.parent.name}/${t.parent.version} reads gray; its first convolution is repeated over R, G and B (divided by 3), so it starts from the parent's outputs on gray images`);
    model = t.model;
    parent = t.parent;
    head = t.head;
    if (head) log(`new classifier: ${head.carried.length} classes start from the parent's rows${head.fresh.length ? `, ${head.fresh.length} new (${head.fresh.join(', ')})` : ''}`);
    inputSize = parent.input.size;
    if (options.dropout !== undefined) log(`dropout: ${options.dropout} in ${setDropoutRate(model, options.dropout)} layers`);
  } else {
    engine.check?.(options, null, dataset.classes);
    model = buildModel(options.architecture, { numClasses: dataset.classes.length, seed: options.seed, dropout: options.dropout, channels: options.channels });
    if (options.initFrom) {
      const init = await initialiseFrom(model, options.initFrom, dataset.classes);
      parent = init.source;
      identity = init.identity;
      log(`initialised from ${options.initFrom}: ${init.copied.length} layers copied, new: ${init.fresh.join(', ') || 'none'}`);
    }
  }
  const architecture = options.from ? parent!.architecture : options.architecture;
  let ties: RotationTies | undefined;
  if (quarterTurnInvariant(architecture)) {
    ties = rotationTies(model);
    tieWeights(model, ties, !options.from && !options.initFrom);
    log(`quarter-turn ties: ${ties.size} weights tied, the network is invariant to quarter turns`);
  }
  // A fine-tuned model keeps its parent's input; a new architecture takes the requested one.
  const preprocessing = (options.from ? parent?.preprocessing : undefined) ?? spec;
  const channels = (model.inputs[0]!.shape[3] ?? 1) === 3 ? 3 : 1;
  if (channels === 3 && camera.colour !== 'rgb') throw new Error(`${parent?.name}/${parent?.version} reads R, G and B: declare the colour camera with --colour rgb, or start from a gray member.`);
  const t0 = performance.now();
  const table = await loadImageTable(dataset.items, inputSize, preprocessing, {
    onProgress: (done, total) => log(`preparing images: ${done}/${total}`),
    camera,
    channels,
  });
  log(`images ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const trainPart: TrainData['train'] = subTable(dataset, table, split.train);
  const valPart = split.validation.length > 0 ? subTable(dataset, table, split.validation) : null;
  if (identity.length > 0) log(`identity start: ${calibrateIdentityNorms(model, identity, trainPart.table).join(', ') || 'no batch norm'} set to pass the features through`);

  const version = options.version ?? defaultVersion();
  const dir = path.join(options.modelsDir, options.member, version);
  const checkpointDir = path.join(cacheDir(), 'checkpoints', `${options.member}-${version}`);
  let teacher: TeacherRecord | undefined;
  if (options.teacher) {
    const taught = await teacherTargets(options.teacher, dataset, split.train, split.validation, { cacheDir: checkpointDir, log, stopRequested: options.hooks?.stopRequested, camera });
    trainPart.targets = taught.targets;
    const agree = computeMetrics(taught.targets, trainPart.labels, dataset.classes.length);
    log(`teacher: top-1 ${(agree.top1 * 100).toFixed(1)}%, log-loss ${agree.logLoss.toFixed(3)} on the training images; targets are ${distill} × its vote + ${+(1 - distill).toFixed(3)} × the label`);
    teacher = { ...taught.record, distill };
  }
  const fill = preprocessing.invert ? 1 - preprocessing.background / 255 : preprocessing.background / 255;
  const result = await engine.fit(
    model,
    { train: trainPart, validation: valPart, numClasses: dataset.classes.length },
    {
      epochs: options.epochs,
      batchSize: options.batchSize,
      learningRate: options.learningRate,
      finalLearningRateFraction: options.finalLearningRate ?? 0.02,
      weightDecay: options.weightDecay,
      seed: options.seed,
      classWeights: options.classWeights,
      augment: options.augment,
      ...(options.mix && options.mix.kind !== 'none' ? { mix: options.mix } : {}),
      patience: options.patience,
      maxMinutes: options.maxMinutes,
      fill,
      command: options.command,
      averageFrom: options.averageFrom ?? 0,
      distill,
      ties,
      headEpochs: options.headEpochs ?? 0,
      headLearningRate: options.headLearningRate,
      warmupEpochs: options.warmupEpochs ?? 0,
      fitToTime: options.fitToTime ?? false,
    },
    { checkpointDir, ...options.hooks },
  );
  await model.save(folderIO(dir));
  await writeOnnxBeside(dir, `${options.member}/${version}`, log);
  const best = result.epochs.find((e) => e.epoch === result.bestEpoch) ?? result.epochs[result.epochs.length - 1];
  // The weights written are the average's when it beat every epoch, so are the metrics.
  const v = result.average?.kept ? result.average.validation : best?.validation;
  const meta: MemberMeta = {
    name: options.member,
    version,
    classes: dataset.classes,
    input: { size: inputSize, channels },
    preprocessing,
    camera: memberCamera(camera),
    architecture,
    training: {
      command: options.command,
      commandHistory: result.commands,
      seed: options.seed,
      ...(options.initFrom ? { initialisedFrom: `${parent!.name}/${parent!.version}` } : {}),
      ...(head ? { head } : {}),
      ...engine.trainingMeta,
      ...(teacher ? { teacher } : {}),
      dataFingerprint: dataset.fingerprint,
      split: path.relative(dir, splitDir).split(path.sep).join('/'),
      epochs: result.epochs.length,
      bestEpoch: result.bestEpoch,
      stopReason: result.reason,
      backend: backend.name,
      batchSize: options.batchSize,
      learningRate: options.learningRate,
      finalLearningRate: options.finalLearningRate ?? 0.02,
      ...(options.headEpochs ? { headEpochs: options.headEpochs, headLearningRate: options.headLearningRate ?? options.learningRate } : {}),
      ...(options.warmupEpochs ? { warmupEpochs: options.warmupEpochs } : {}),
      ...(options.fitToTime && options.maxMinutes > 0 ? { schedule: 'cosine over the time budget', maxMinutes: options.maxMinutes } : {}),
      weightDecay: options.weightDecay,
      dropout: dropoutRate(model),
      classWeights: options.classWeights,
      augment: options.augment,
      ...(options.mix && options.mix.kind !== 'none' ? { mix: options.mix } : {}),
      trainImages: split.train.length,
      validationImages: split.validation.length,
      multiplyAdds: countMacs(model),
      ...(result.average ? { average: { ...result.average, validation: result.average.validation && headline(result.average.validation) } } : {}),
      history: result.epochs.map(({ validation, ...e }) => ({ ...e, validation: validation ? headline(validation) : undefined })),
    },
    metrics: v ? { ...headline(v), evaluatedOn: v.count, split: 'validation' } : {},
    parent: parent ? `${parent.name}/${parent.version}` : null,
    createdAt: new Date().toISOString(),
  };
  const written = await writeMeta(dir, meta);
  model.dispose();
  return { dir, meta: written, result };
}

export { DEFAULT_AUGMENT };
