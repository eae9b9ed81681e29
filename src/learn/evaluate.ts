// `plankwatch evaluate`: every member, soft, geometric and hard voting, each with and without
// test-time augmentation, on held-out images only; the cost of TTA in ROIs/s beside its gain.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { EnsembleFile } from '../classify/meta.js';
import { startOnnxRuntime, type OnnxRuntimeInfo } from '../classify/onnx-runtime.js';
import { initBackend, type TrainingBackend } from '../engine/backend.js';
import { loadSplit, overlap, readDataset, stratifiedSplit, trainingImages, type Dataset } from './dataset.js';
import { describeChoice, describeFair, rankChoices, searchEnsembles, type EnsembleChoice, type FairEstimate, type SearchRule } from './ensemble-search.js';
import { loadMembers, runMembers, type LoadedMember, type MemberRun } from './evaluate-members.js';
import { computeMetrics, headline, type Metrics } from './metrics.js';
import { writeReport } from './report.js';
import { calibrate, describeCalibration, type Calibration } from './calibration.js';
import type { TtaTransform } from './tta.js';
import { checkCamera } from '../classify/camera-check.js';
import { NDSB_CAMERA, type CameraProfile } from '../preprocess/camera.js';
import { isEcoTaxaExport, readEcoTaxaData, type EcoTaxaFilter } from './ecotaxa-data.js';
import { polarityWarning, samplePolarity } from './polarity-sample.js';
import { voteRows } from './voting.js';

export interface EvaluateOptions {
  data: string;
  ensemble: string;
  modelsDir?: string;
  split?: string;
  all: boolean;
  allowLeak: boolean;
  tta: TtaTransform[];
  outDir: string;
  limit: number;
  /** When set: also search every set of up to four members within this many multiply-adds per ROI. */
  budgetMacs?: number;
  /** The search also tries each member's 45° turn, alone and beside the image (default true). */
  searchDiagonal?: boolean;
  /** 'auto' and 'onnx': the members run on ONNX Runtime (model.onnx), else on this TensorFlow.js backend. */
  backend: TrainingBackend | 'onnx';
  /** Write the vote's fitted temperature into the ensemble file (it is measured either way). */
  calibrate?: boolean;
  /** Also write each member's probabilities (its views as in the ensemble file) beside the report. */
  saveProbabilities?: boolean;
  /** The camera the images come from (default bright-field gray): members that cannot serve it are refused. */
  camera?: CameraProfile;
  /** When options.data is an EcoTaxa export: which objects and classes to take. */
  ecotaxa?: EcoTaxaFilter;
  log?: (line: string) => void;
}

export interface VariantResult {
  name: string;
  tta: boolean;
  metrics: Metrics;
  /** Images per second through the members this variant needs (forward passes only, one thread). */
  imagesPerSecond: number;
  /** The vote of a smaller set of the members (evaluation.json keeps only its headline figures). */
  subset?: boolean;
}

export interface EvaluationSummary {
  variants: VariantResult[];
  best: string;
  table: string;
  classes: string[];
  count: number;
  leaks: Record<string, number>;
  /** The temperature of the vote as the daemon runs it, fitted on these images (calibration.ts). */
  calibration?: Calibration;
  /** With a budget: the best affordable sets of the members (ensemble-search.ts). */
  search?: { budgetMacs: number; rule: SearchRule; sets: number; byTop1: EnsembleChoice[]; byLogLoss: EnsembleChoice[]; fair: FairEstimate | null };
}

/**
 * Score an ensemble file's members, alone and voting, on held-out images; writes evaluation.json
 * and the report to options.outDir.
 */
export async function runEvaluation(options: EvaluateOptions): Promise<EvaluationSummary> {
  const log = options.log ?? (() => {});
  // ONNX Runtime first (one intra-op thread: the ROIs/s below are per thread), as the daemon does;
  // TensorFlow.js reads the layers models (multiply-adds) and runs them when it cannot load.
  let onnx: OnnxRuntimeInfo | null = null;
  if (options.backend === 'auto' || options.backend === 'onnx') {
    try {
      onnx = await startOnnxRuntime({ providers: 'cpu', threads: 1 });
    } catch (err) {
      log(`${(err as Error).message} Evaluating on TensorFlow.js instead.`);
    }
  }
  const tfjs = await initBackend(options.backend === 'onnx' ? 'auto' : options.backend);
  const backend = { name: onnx ? 'onnx' : tfjs.name };
  log(`backend: ${onnx ? `onnx (ONNX Runtime ${onnx.version}, ${onnx.provider}, 1 thread)` : tfjs.name}`);
  const ensemble = JSON.parse(await readFile(options.ensemble, 'utf8')) as EnsembleFile;
  const modelsDir = options.modelsDir ?? path.dirname(options.ensemble);
  const members = await loadMembers(ensemble, modelsDir, onnx, options.searchDiagonal ?? true);
  const camera = options.camera ?? NDSB_CAMERA;
  checkCamera(members, camera);
  const dataset = isEcoTaxaExport(options.data) ? await readEcoTaxaData(options.data, options.ecotaxa, log) : await readDataset(options.data);
  const polarityDoubt = polarityWarning(await samplePolarity(dataset.items), camera);
  if (polarityDoubt) log(polarityDoubt);

  const { rels, splitDir } = await imagesToEvaluate(options, dataset, members, modelsDir);
  const leaks = await checkLeaks(members, modelsDir, rels, options.allowLeak);
  log(`evaluating ${rels.length} images with ${members.length} member(s)`);

  const classes = dataset.classes;
  const k = classes.length;
  const classIndex = new Map(classes.map((c, i) => [c, i]));
  const itemsByRel = new Map(dataset.items.map((i) => [i.rel, i]));
  const items = rels.map((r) => itemsByRel.get(r)!);
  const labels = Int32Array.from(items.map((i) => classIndex.get(i.label)!));
  const transforms = options.tta.length > 0 ? options.tta : (['identity'] as TtaTransform[]);
  const perMember = await runMembers(members, { dataset, items, rels, labels }, transforms, { camera, searched: Boolean(options.budgetMacs), log });

  // With a budget, the search below ranks the smaller sets instead (with their views and costs).
  // Smaller sets and searched sets vote by the file's rule (hard voting: by the soft one).
  const setRule: SearchRule = ensemble.voting === 'geometric' ? 'geometric' : 'soft';
  const variants = scoreVariants(members, perMember, ensemble, { labels, k, transforms, subsets: !options.budgetMacs, setRule });
  const { table, best } = variantTable(variants);
  const n = rels.length;
  const summary: EvaluationSummary = { variants, best, table, classes, count: n, leaks };
  // The temperature of the vote as the daemon runs it (views as in the file), fitted at T = 1.
  if (ensemble.voting !== 'hard') {
    const daemonVote = voteRows(ensemble.voting, perMember.map((p) => p.configured), k, members.map((m) => m.weight));
    summary.calibration = calibrate(daemonVote, labels, k);
    summary.table += `\n${describeCalibration(summary.calibration)}`;
    if (options.calibrate) {
      await writeFile(options.ensemble, JSON.stringify({ ...ensemble, temperature: Number(summary.calibration.temperature.toFixed(3)) }, null, 2) + '\n');
      log(`wrote "temperature": ${summary.calibration.temperature.toFixed(3)} into ${options.ensemble}`);
    }
  }
  if (options.budgetMacs) {
    const candidates = members.map((m, i) => ({ name: m.meta.name, version: m.meta.version, macs: m.macs, secondView: m.secondView, diagonalViews: m.diagonalViews, probs: perMember[i]!.byTransform }));
    const { choices, fair } = searchEnsembles(candidates, labels, k, options.budgetMacs, { rule: setRule });
    summary.search = { budgetMacs: options.budgetMacs, rule: setRule, sets: choices.length, ...rankChoices(choices), fair };
    log(`searched ${choices.length} sets within ${(options.budgetMacs / 1e6).toFixed(0)} M multiply-adds per ROI`);
    summary.table += `\n\nbest sets within ${(options.budgetMacs / 1e6).toFixed(0)} M multiply-adds per ROI (${setRule} vote; top-1, log-loss, cost, members), by top-1:\n`;
    summary.table += summary.search.byTop1.map(describeChoice).join('\n');
    summary.table += '\nby log-loss:\n' + summary.search.byLogLoss.map(describeChoice).join('\n');
    if (fair) summary.table += `\n${describeFair(fair)}`;
  }
  await mkdir(options.outDir, { recursive: true });
  await writeFile(
    path.join(options.outDir, 'evaluation.json'),
    JSON.stringify(
      {
        ensemble: ensemble.version,
        voting: ensemble.voting,
        data: { fingerprint: dataset.fingerprint, evaluated: n, split: splitDir ?? null, all: options.all },
        tta: transforms,
        backend: backend.name,
        leaks,
        best,
        search: summary.search ?? null,
        calibration: summary.calibration ?? null,
        classes,
        // Every variant with its per-class figures and confusion matrix, except the votes of
        // smaller sets: 2^members of them would make the file hundreds of megabytes.
        variants: variants.map((v) => (v.subset ? { ...v, metrics: headline(v.metrics) } : v)),
      },
      null,
      1,
    ),
  );
  if (options.saveProbabilities) await saveProbabilities(options.outDir, { rels, classes, labels, members, perMember });
  await writeReport(options.outDir, summary, { ensemble, split: splitDir ?? '(all images)', backend: backend.name, transforms });
  for (const m of members) await m.dispose();
  return summary;
}

/** Which images: the validation list of a split (the first member's, by default), or all of them (--all), at most --limit. */
async function imagesToEvaluate(options: EvaluateOptions, dataset: Dataset, members: LoadedMember[], modelsDir: string): Promise<{ rels: string[]; splitDir: string | undefined }> {
  let rels: string[];
  const firstSplit = members[0]!.meta.training.split;
  const splitDir = options.split ?? (firstSplit ? path.join(modelsDir, members[0]!.meta.name, members[0]!.meta.version, firstSplit) : undefined);
  if (options.all || !splitDir) {
    rels = dataset.items.map((i) => i.rel);
  } else {
    const split = await loadSplit(splitDir);
    const present = new Set(dataset.items.map((i) => i.rel));
    rels = split.validation.filter((r) => present.has(r));
  }
  if (options.limit > 0 && rels.length > options.limit) {
    const sub: Dataset = { ...dataset, items: dataset.items.filter((i) => rels.includes(i.rel)) };
    rels = stratifiedSplit(sub, options.limit / rels.length, 7).validation;
  }
  return { rels, splitDir };
}

/** Leak check: no evaluated image may be in any member's training list (unless allowed, then counted). */
async function checkLeaks(members: LoadedMember[], modelsDir: string, rels: string[], allowLeak: boolean): Promise<Record<string, number>> {
  const leaks: Record<string, number> = {};
  for (const m of members) {
    const trained = await trainingImages(path.join(modelsDir, m.meta.name, m.meta.version), m.meta.training.split);
    if (!trained) continue;
    const n = overlap(trained, rels).length;
    leaks[`${m.meta.name}/${m.meta.version}`] = n;
    if (n > 0 && !allowLeak) {
      throw new Error(`${n} of the ${rels.length} images to evaluate were used to train ${m.meta.name}/${m.meta.version}; evaluate on its held-out split, or pass --allow-leak to measure anyway (flagged in the report).`);
    }
  }
  return leaks;
}

/** Every member alone, every voting rule, the ensemble with its own views, and (`subsets`) every smaller set. */
function scoreVariants(
  members: LoadedMember[],
  perMember: MemberRun[],
  ensemble: EnsembleFile,
  o: { labels: Int32Array; k: number; transforms: TtaTransform[]; subsets: boolean; setRule: SearchRule },
): VariantResult[] {
  const { labels, k, transforms } = o;
  const variants: VariantResult[] = [];
  const n = labels.length;
  members.forEach((m, i) => {
    const p = perMember[i]!;
    variants.push({ name: `${m.meta.name}/${m.meta.version}`, tta: false, metrics: computeMetrics(p.plain, labels, k), imagesPerSecond: n / p.plainSeconds });
    if (transforms.length > 1) variants.push({ name: `${m.meta.name}/${m.meta.version}`, tta: true, metrics: computeMetrics(p.tta, labels, k), imagesPerSecond: n / p.ttaSeconds });
  });
  if (members.length > 1) {
    const weights = members.map((m) => m.weight);
    const plainSec = perMember.reduce((a, p) => a + p.plainSeconds, 0);
    const ttaSec = perMember.reduce((a, p) => a + p.ttaSeconds, 0);
    for (const rule of ['soft', 'geometric', 'hard'] as const) {
      variants.push({ name: `${rule} vote`, tta: false, metrics: computeMetrics(voteRows(rule, perMember.map((p) => p.plain), k, weights), labels, k), imagesPerSecond: n / plainSec });
      if (transforms.length > 1) {
        variants.push({ name: `${rule} vote`, tta: true, metrics: computeMetrics(voteRows(rule, perMember.map((p) => p.tta), k, weights), labels, k), imagesPerSecond: n / ttaSec });
      }
    }
  }
  // The ensemble as the daemon runs it, when some member averages views of its own.
  if (members.some((m) => m.views.length > 1 || m.views[0] !== 'identity')) {
    const seconds = perMember.reduce((a, p) => a + p.configuredSeconds, 0);
    const votes = voteRows(ensemble.voting, perMember.map((p) => p.configured), k, members.map((m) => m.weight), ensemble.temperature ?? 1);
    variants.push({ name: `${ensemble.voting} vote, views as in the ensemble file`, tta: false, metrics: computeMetrics(votes, labels, k), imagesPerSecond: n / seconds });
  }
  if (o.subsets) variants.push(...subsetVotes(members, perMember, labels, k, transforms.length > 1, o.setRule));
  return variants;
}

/** The variants as a text table, and which one scores best by each measure. */
function variantTable(variants: VariantResult[]): { table: string; best: string } {
  const label = (v: VariantResult) => `${v.name}${v.tta ? ' + TTA' : ''}`;
  const byLoss = [...variants].sort((a, b) => a.metrics.logLoss - b.metrics.logLoss)[0]!;
  const byTop1 = [...variants].sort((a, b) => b.metrics.top1 - a.metrics.top1)[0]!;
  const best = `lowest log-loss: ${label(byLoss)} (${byLoss.metrics.logLoss.toFixed(4)}); highest top-1: ${label(byTop1)} (${(byTop1.metrics.top1 * 100).toFixed(2)}%)`;
  const width = Math.max(32, ...variants.map((v) => label(v).length));
  const header = `${'variant'.padEnd(width)} ${'top-1'.padStart(7)} ${'top-5'.padStart(7)} ${'log-loss'.padStart(9)} ${'macro-F1'.padStart(9)} ${'ROIs/s'.padStart(8)}`;
  const rows = variants.map(
    (v) =>
      `${label(v).padEnd(width)} ${(v.metrics.top1 * 100).toFixed(2).padStart(6)}% ${(v.metrics.top5 * 100).toFixed(2).padStart(6)}% ${v.metrics.logLoss.toFixed(4).padStart(9)} ${v.metrics.macroF1.toFixed(4).padStart(9)} ${v.imagesPerSecond.toFixed(0).padStart(8)}`,
  );
  return { table: [header, ...rows].join('\n'), best };
}

/**
 * probabilities.json (the images, their labels, the classes and one entry per member) and one
 * little-endian float32 file per member: an images × classes matrix of its probabilities through
 * its views as in the ensemble file, for analyses of the vote that need no model run.
 */
async function saveProbabilities(
  outDir: string,
  run: { rels: string[]; classes: string[]; labels: Int32Array; members: LoadedMember[]; perMember: MemberRun[] },
): Promise<void> {
  const files = run.members.map((m) => `probabilities-${m.meta.name}-${m.meta.version}.f32`);
  for (const [i, file] of files.entries()) {
    const probs = run.perMember[i]!.configured;
    await writeFile(path.join(outDir, file), new Uint8Array(probs.buffer, probs.byteOffset, probs.byteLength));
  }
  const members = run.members.map((m, i) => ({ name: m.meta.name, version: m.meta.version, views: m.views, weight: m.weight, file: files[i] }));
  await writeFile(path.join(outDir, 'probabilities.json'), JSON.stringify({ images: run.rels, labels: Array.from(run.labels), classes: run.classes, members }) + '\n');
}

/**
 * With three or more members: the vote (`rule`) of every smaller set of two or more, with and
 * without TTA, so that the best ensemble for a given inference cost can be read off (each set's
 * ROIs/s is the sum of its members' measured times).
 */
function subsetVotes(
  members: LoadedMember[],
  perMember: MemberRun[],
  labels: Int32Array,
  k: number,
  withTta: boolean,
  rule: SearchRule,
): VariantResult[] {
  const out: VariantResult[] = [];
  const n = labels.length;
  for (let mask = 1; mask < (1 << members.length) - 1; mask++) {
    const chosen = members.map((_, i) => i).filter((i) => mask & (1 << i));
    if (chosen.length < 2) continue;
    const name = `${rule} vote ${chosen.map((i) => `${members[i]!.meta.name}/${members[i]!.meta.version}`).join(' + ')}`;
    const weights = chosen.map((i) => members[i]!.weight);
    const pick = (key: 'plain' | 'tta') => chosen.map((i) => perMember[i]![key]);
    const seconds = (key: 'plainSeconds' | 'ttaSeconds') => chosen.reduce((a, i) => a + perMember[i]![key], 0);
    out.push({ name, tta: false, metrics: computeMetrics(voteRows(rule, pick('plain'), k, weights), labels, k), imagesPerSecond: n / seconds('plainSeconds'), subset: true });
    if (withTta) out.push({ name, tta: true, metrics: computeMetrics(voteRows(rule, pick('tta'), k, weights), labels, k), imagesPerSecond: n / seconds('ttaSeconds'), subset: true });
  }
  return out;
}
