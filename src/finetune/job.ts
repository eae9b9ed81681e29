// One fine-tuning job, as the worker thread runs it: for each member of the active ensemble,
// a new version trained from the current one on the validated labels plus a replay sample of the
// classes it knows (the ship's own high-confidence frames, the shipped reference set, an optional
// folder; class-weighted), its head grown for new classes; then both ensembles scored on the
// frozen evaluation set (the ship's gate slice, the shipped reference set, an optional folder)
// for the gate. Pure computation and files: no database here.
import { memberCamera } from '../classify/camera-check.js';
import type { CameraProfile } from '../preprocess/index.js';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { alignClasses, remapRows } from '../classify/classes.js';
import type { EnsembleFile, MemberMeta } from '../classify/meta.js';
import { readMeta, writeMeta } from '../classify/model-files.js';
import { PlankwatchError } from '../errors.js';
import { initBackend, type TrainingBackend } from '../engine/backend.js';
import type { LabelledImage } from '../learn/dataset.js';
import { loadImageTable } from '../learn/image-cache.js';
import type { ClassWeighting } from '../learn/trainer.js';
import { voteRows } from '../learn/voting.js';
import type { EnsembleScore } from './gate.js';
import { featureSource, trainHeadOnFeatures } from './head-features.js';
import { ABOARD_AUGMENT, gateEvaluationSet, labelItem, loadReplayTable, replayPools, replaySample, scoreRows, type ReplayCounts } from './job-data.js';
import { trainWithTfjs } from './tfjs-member.js';

/** One validated label with the image file it points at. */
export interface JobLabel {
  sha256: string;
  label: string;
  file: string;
}


export type FinetuneLayers = 'all' | 'top' | 'head';

export interface FinetuneJob {
  runId: number;
  modelsDir: string;
  /** The active ensemble, the starting point. */
  ensemble: EnsembleFile;
  /** Version name for the new member folders and the candidate ensemble. */
  version: string;
  /** Labels to train on. */
  train: JobLabel[];
  /** Labels never trained on: the ship's slice of the frozen evaluation set. */
  evalLabels: JobLabel[];
  /**
   * The shipped reference set: a folder holding eval/ (scored by the gate, never trained on) and
   * replay/ (replayed), each a folder per class; null or missing: none.
   */
  referenceData?: string | null;
  /** The ship's own high-confidence classified frames (never gate-slice ones), replayed first. */
  replayFrames?: JobLabel[];
  /** Labelled folder (a folder per class) added to the evaluation set; null: none. */
  evalData: string | null;
  /** Most images taken from evalData (stratified, seeded); 0: all. */
  evalLimit: number;
  /** An extra replay folder (a folder per class, e.g. the members' original training data); null: none. */
  replayData: string | null;
  /** Replay images drawn per class the member knows. */
  replayPerClass: number;
  /** Each label image counts this many times per epoch (the cruise's own water weighs more). */
  labelRepeat: number;
  epochs: number;
  /** Epochs when the classifier alone learns on features computed once (cheap: milliseconds each). */
  headEpochs: number;
  batchSize: number;
  learningRate: number;
  classWeights: ClassWeighting;
  augment: boolean;
  seed: number;
  /** Stop training a member after this many minutes (0: no limit). */
  maxMinutes: number;
  backend: TrainingBackend;
  /** Which layers learn: every one, the last convolution block and the dense layers, or the classifier ("logits") only. */
  layers: FinetuneLayers;
  /**
   * With layers "head" and new classes: put the old classes' classifier weights back after
   * training, so that only the new classes' columns change (the old classes score exactly as
   * before, except where a new class now wins).
   */
  keepOldClasses: boolean;
  /**
   * Largest share of the replay images (old classes) a new class may claim: its bias is lowered
   * until no more than this fraction would be predicted as it (0: no calibration).
   */
  newClassFalsePositive: number;
  /** Thread niceness (0-19; higher yields more to inference). */
  niceness: number;
  /**
   * With layers "head": train the classifier on the features the frozen network gives on ONNX
   * Runtime (false: train through the whole network with TensorFlow.js, as before). Default true.
   */
  headOnFeatures?: boolean;
  /**
   * The ship's camera: its frames (labels, evaluation slice, replayed frames) are brought to the
   * canonical form by it, and new versions record it. Absent: bright-field gray (NDSB).
   */
  camera?: CameraProfile;
}

/** The job settings that come straight from the `finetune` section of the config. */
export type JobSettings = Pick<
  FinetuneJob,
  | 'evalLimit' | 'replayPerClass' | 'labelRepeat' | 'epochs' | 'headEpochs' | 'batchSize' | 'learningRate' | 'classWeights' | 'augment'
  | 'maxMinutes' | 'backend' | 'niceness' | 'layers' | 'keepOldClasses' | 'newClassFalsePositive'
>;

export function jobSettings(c: JobSettings): JobSettings {
  return {
    evalLimit: c.evalLimit,
    replayPerClass: c.replayPerClass,
    labelRepeat: c.labelRepeat,
    epochs: c.epochs,
    headEpochs: c.headEpochs,
    batchSize: c.batchSize,
    learningRate: c.learningRate,
    classWeights: c.classWeights,
    augment: c.augment,
    maxMinutes: c.maxMinutes,
    backend: c.backend,
    niceness: c.niceness,
    layers: c.layers,
    keepOldClasses: c.keepOldClasses,
    newClassFalsePositive: c.newClassFalsePositive,
  };
}

export interface MemberOutcome {
  name: string;
  parentVersion: string;
  version: string;
  newClasses: string[];
  labelImages: number;
  replayImages: number;
  epochs: number;
  seconds: number;
  finalLoss: number;
  /** Where the replay images came from. */
  replay: ReplayCounts;
}

/** How many images of the evaluation set came from each source. */
export interface EvaluationSets {
  /** The ship's frozen slice of confirmed frames. */
  ship: number;
  /** The shipped reference set (referenceData/eval). */
  reference: number;
  /** finetune.evalData. */
  folder: number;
}

export interface FinetuneJobResult {
  candidate: EnsembleFile;
  members: MemberOutcome[];
  evaluation: { classes: string[]; count: number; sets: EvaluationSets; oldClasses: string[]; before: EnsembleScore; after: EnsembleScore };
  warnings: string[];
  backend: string;
  seconds: number;
}

/** The name a fine-tuned member's metrics give the set they were measured on. */
export function gateSetName(runId: number): string {
  return `fine-tuning gate of run ${runId}`;
}

export type JobProgress = { member: string; epoch: number; epochs: number; batch: number; batches: number; loss: number };

export async function runFinetuneJob(job: FinetuneJob, onProgress: (p: JobProgress) => void = () => {}, log: (line: string) => void = () => {}): Promise<FinetuneJobResult> {
  const started = performance.now();
  const warnings: string[] = [];
  const backend = await initBackend(job.backend);
  const modelsDir = job.modelsDir;
  const pools = await replayPools(job, warnings);
  if (job.replayData && !existsSync(job.replayData)) warnings.push(`replay folder ${job.replayData} (finetune.replayData) not found: left out`);
  if (pools.frames.length === 0 && !pools.reference && !pools.folder) {
    warnings.push('no replay images (no high-confidence frames on board, no shipped reference set): fine-tuning on validated labels alone (old classes may be forgotten; the gate still guards promotion)');
  }

  // Every member's classes before this run: the old classes the gate measures apart.
  const metas = await Promise.all(job.ensemble.members.map((m) => readMeta(path.join(modelsDir, m.name, m.version))));
  const oldClasses = [...new Set(metas.flatMap((m) => m.classes))].sort();
  const gateClasses = new Set([...oldClasses, ...job.train.map((l) => l.label)]);

  const { items: evalItems, sets } = await gateEvaluationSet(job, gateClasses, warnings);

  const members: MemberOutcome[] = [];
  const memberMetas: { before: MemberMeta; after: MemberMeta }[] = [];
  const probsBefore: Float32Array[] = [];
  const probsAfter: Float32Array[] = [];
  for (const [index, m] of job.ensemble.members.entries()) {
    const t0 = performance.now();
    const dir = path.join(modelsDir, m.name, m.version);
    const meta = metas[index]!;
    const size = meta.input.size;
    const channels = meta.input.channels;
    const spec = meta.preprocessing;
    const known = new Set(meta.classes);
    const newClasses = [...new Set(job.train.map((l) => l.label))].filter((c) => !known.has(c)).sort();
    const classes = [...meta.classes, ...newClasses];
    const classIndex = new Map(classes.map((c, i) => [c, i]));

    // Training rows: labels (repeated), then the replay sample.
    const { items: replayItems, counts: replayCounts } = await replaySample(pools, meta, dir, job, warnings);
    const labelItems = job.train.map((l) => labelItem(l));
    const labelTable = await loadImageTable(labelItems, size, spec, { cache: false, camera: job.camera, channels });
    const replayTable = await loadReplayTable(replayItems, size, spec, job.camera, { channels });
    const classOf = (items: LabelledImage[]) => Int32Array.from(items, (i) => classIndex.get(i.label)!);
    const labelClasses = classOf(labelItems);
    const replayClasses = classOf(replayItems);
    const repeat = Math.max(1, Math.trunc(job.labelRepeat));
    const rows = labelItems.length * repeat + replayItems.length;
    log(`${m.name}/${m.version}: ${labelItems.length} labels x${repeat}, ${replayItems.length} replay images, new classes: ${newClasses.join(', ') || 'none'}`);
    const evalTable = await loadReplayTable(evalItems, size, spec, job.camera, { cache: false, channels });
    const outDir = path.join(modelsDir, m.name, job.version);
    const batchSize = Math.max(1, Math.min(job.batchSize, rows));
    const progress = (p: { epoch: number; epochs: number; batch: number; batches: number; loss: number }) =>
      onProgress({ member: m.name, epoch: p.epoch, epochs: p.epochs, batch: p.batch, batches: p.batches, loss: p.loss });

    // The head alone: trained on the features the frozen body gives on ONNX Runtime (a member
    // imported as model.onnx alone can only be fine-tuned so).
    const id = `${m.name}/${m.version}`;
    const source = job.layers === 'head' && job.headOnFeatures !== false ? await featureSource(dir, meta, id) : null;
    if (source && 'reason' in source) log(`${id}: ${source.reason}; its head is trained with TensorFlow.js`);
    let trained: { epochs: number; finalLoss: number | null; before: Float32Array; after: Float32Array; backend: string; views?: number };
    if (source && !('reason' in source)) {
      const settings = { ...job, epochs: job.headEpochs, augment: job.augment ? ABOARD_AUGMENT : null, batchSize, seed: job.seed };
      const result = await trainHeadOnFeatures(
        { id, member: m.name, meta, dir, outDir, classes, newClasses, labels: { table: labelTable, classes: labelClasses }, replay: { table: replayTable, classes: replayClasses }, repeat, evalTable, settings },
        source,
        progress,
        log,
      );
      if (result.calibration.length > 0) log(`${m.name}: new-class bias lowered by ${result.calibration.map((c) => c.toFixed(2)).join(', ')}`);
      log(`${id}: head trained on features in ${result.trainSeconds.toFixed(1)} s (${result.epochs} epochs, ${result.views} view(s) per image)`);
      trained = { ...result, backend: 'onnxruntime features' };
    } else {
      if (!existsSync(path.join(dir, 'model.json'))) {
        throw new PlankwatchError('PW_E_FINETUNE_FAILED', `Member ${id} was imported as model.onnx alone: only its head can be fine-tuned (finetune.layers "head"; it is "${job.layers}").`);
      }
      trained = await trainWithTfjs(job, { id, member: m.name, dir, outDir, meta, newClasses, numClasses: classes.length, labelItems, labelTable, labelClasses, replayItems, replayTable, replayClasses, repeat, evalTable, batchSize }, progress, log);
      trained.backend = backend.name;
    }
    probsBefore.push(trained.before);
    probsAfter.push(trained.after);

    const next = fineTunedMeta(job, meta, { parentId: id, classes, newClasses, labels: labelItems.length, repeat, replayImages: replayItems.length, replayCounts, replayFolder: pools.folder ? (job.replayData ?? null) : null, batchSize, trained, seconds: (performance.now() - t0) / 1000 });
    memberMetas.push({ before: meta, after: next });
    members.push({
      name: m.name,
      parentVersion: m.version,
      version: job.version,
      newClasses,
      labelImages: labelItems.length,
      replayImages: replayItems.length,
      epochs: trained.epochs,
      seconds: (performance.now() - t0) / 1000,
      finalLoss: trained.finalLoss ?? NaN,
      replay: replayCounts,
    });
    // Per-member metrics go into meta.json (written with checksums below), named by the set they
    // were measured on, beside the parent's figure on the very same images: a gate set is small
    // and not the set the parent's own metrics were measured on.
    if (evalItems.length > 0) {
      const evalClasses = alignClasses([classes, ...evalItems.map((i) => [i.label])]).classes;
      const memberMetrics = scoreRows(remapRows(probsAfter[index]!, classes, evalClasses), evalItems, evalClasses);
      const parentMetrics = scoreRows(remapRows(probsBefore[index]!, meta.classes, evalClasses), evalItems, evalClasses);
      next.metrics = {
        top1: memberMetrics.accuracy,
        evaluatedOn: memberMetrics.count,
        evaluationSet: gateSetName(job.runId),
        parentTop1: parentMetrics.accuracy,
        evaluationSources: sets,
      };
    }
    await writeMeta(outDir, next);
  }

  // Ensemble scores: every member's probabilities on the union of all classes, then the vote.
  const allClasses = alignClasses([...memberMetas.flatMap((m) => [m.before.classes, m.after.classes]), evalItems.map((i) => i.label)]).classes;
  const weights = job.ensemble.members.map((m) => m.weight ?? 1);
  const k = allClasses.length;
  const before = voteRows(job.ensemble.voting, probsBefore.map((p, i) => remapRows(p, memberMetas[i]!.before.classes, allClasses)), k, weights);
  const after = voteRows(job.ensemble.voting, probsAfter.map((p, i) => remapRows(p, memberMetas[i]!.after.classes, allClasses)), k, weights);
  const candidate: EnsembleFile = { ...job.ensemble, version: job.version, members: job.ensemble.members.map((m) => ({ ...m, version: job.version })) };
  return {
    candidate,
    members,
    evaluation: { classes: allClasses, count: evalItems.length, sets, oldClasses, before: scoreRows(before, evalItems, allClasses), after: scoreRows(after, evalItems, allClasses) },
    warnings,
    backend: backend.name,
    seconds: (performance.now() - started) / 1000,
  };
}

/** The meta.json of a fine-tuned member: its parent's, with the new classes and what this run did (metrics are filled in after). */
function fineTunedMeta(
  job: FinetuneJob,
  parent: MemberMeta,
  run: {
    /** The parent as member/version. */
    parentId: string;
    classes: string[];
    newClasses: string[];
    labels: number;
    repeat: number;
    replayImages: number;
    replayCounts: MemberOutcome['replay'];
    replayFolder: string | null;
    batchSize: number;
    trained: { epochs: number; finalLoss: number | null; backend: string; views?: number };
    seconds: number;
  },
): MemberMeta {
  return {
    ...parent,
    version: job.version,
    classes: run.classes,
    ...(job.camera ? { camera: memberCamera(job.camera) } : {}),
    training: {
      ...parent.training,
      command: `plankwatch fine-tune (run ${job.runId})`,
      finetune: {
        run: job.runId,
        labels: run.labels,
        labelRepeat: run.repeat,
        replayImages: run.replayImages,
        replay: { ...run.replayCounts, folderPath: run.replayFolder },
        newClasses: run.newClasses,
        epochs: run.trained.epochs,
        learningRate: job.learningRate,
        batchSize: run.batchSize,
        classWeights: job.classWeights,
        augment: job.augment,
        ...(run.trained.views !== undefined ? { featureViews: run.trained.views } : {}),
        backend: run.trained.backend,
        finalLoss: run.trained.finalLoss,
        seconds: run.seconds,
      },
    },
    metrics: {},
    parent: run.parentId,
    createdAt: new Date().toISOString(),
  };
}
