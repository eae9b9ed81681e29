// Fine-tuning cost on this machine: wall time of one fine-tuning run on 1,000 new validated labels
// (in its worker thread, as the daemon runs it, with the default finetune settings), and the
// classification of a live classifier: its most alone, then what it delivers, and how fast, at
// the camera's offered rate while that run goes on.
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { benchDataDir } from './data.js';
import { Classifier } from '../classify/classifier.js';
import type { EnsembleFile, MemberMeta } from '../classify/meta.js';
import { folderIO, writeMeta } from '../classify/model-files.js';
import { defaults } from '../config/config.js';
import { silentLogger } from '../log.js';
import { architectureInfo, buildModel } from '../learn/architectures.js';
import { initBackend } from '../engine/backend.js';
import { jobSettings, type JobLabel } from '../finetune/job.js';
import { startFinetuneWorker } from '../finetune/worker-client.js';
import { sha256Hex } from '../commands/util.js';
import { DEFAULT_PREPROCESS } from '../preprocess/prepare.js';
import { preprocessFrame } from '../preprocess/preprocess.js';
import type { PreparedFrame } from '../types.js';

export interface FinetuneBenchOptions {
  /** NDSB training folder (a folder per class). */
  dataDir?: string;
  architecture?: string;
  labels?: number;
  /** Classes the base member knows (the labels come from them). */
  classes?: number;
  /** Epochs to run (default: finetune.headEpochs with layers "head", else finetune.epochs); the time for the configured epochs is projected from it. */
  epochs?: number;
  /** Frames per second offered to the classifier while fine-tuning (the camera's rate). */
  offeredRate?: number;
  /** Seconds of classification measured before the run. */
  baselineSeconds?: number;
  log?: (line: string) => void;
}

function p95(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))]!;
}


export async function benchFinetune(options: FinetuneBenchOptions = {}): Promise<Record<string, number | string>> {
  const log = options.log ?? (() => {});
  const dataDir = options.dataDir ?? benchDataDir(process.cwd());
  const arch = options.architecture ?? 'pw-vgg-48';
  const nLabels = options.labels ?? 1000;
  const config = defaults().finetune;
  const tmp = await mkdtemp(path.join(tmpdir(), 'pw-bench-finetune-'));
  try {
    await initBackend('wasm');
    // The classes with the most images, so that each gives its share of the labels.
    const count = (c: string) => readdirSync(path.join(dataDir, c)).length;
    const classes = readdirSync(dataDir)
      .filter((c) => !c.includes('.'))
      .map((c) => ({ c, n: count(c) }))
      .sort((a, b) => b.n - a.n || (a.c < b.c ? -1 : 1))
      .slice(0, options.classes ?? 20)
      .map((x) => x.c)
      .sort();
    const perClass = Math.ceil(nLabels / classes.length);
    const labels: JobLabel[] = [];
    for (const cls of classes) {
      const names = readdirSync(path.join(dataDir, cls)).sort().slice(0, perClass);
      for (const n of names) {
        const file = path.join(dataDir, cls, n);
        labels.push({ sha256: sha256Hex(readFileSync(file)), label: cls, file });
      }
    }
    labels.splice(nLabels);

    // The base member: an untrained network of the real architecture (the time does not depend on the weights).
    const modelsDir = path.join(tmp, 'models');
    const info = architectureInfo(arch);
    const model = buildModel(arch, { numClasses: classes.length, seed: 1 });
    const dir = path.join(modelsDir, 'm', 'v1');
    await model.save(folderIO(dir));
    model.dispose();
    const meta: MemberMeta = {
      name: 'm',
      version: 'v1',
      classes,
      input: { size: info.inputSize, channels: 1 },
      preprocessing: DEFAULT_PREPROCESS,
      architecture: arch,
      training: { command: 'bench', seed: 1, dataFingerprint: 'none' },
      metrics: {},
      parent: null,
      createdAt: new Date().toISOString(),
    };
    await writeMeta(dir, meta);
    const ensemble: EnsembleFile = { version: 'bench', voting: 'soft', members: [{ name: 'm', version: 'v1' }] };
    const ensembleFile = path.join(modelsDir, 'ensemble.json');
    await writeFile(ensembleFile, JSON.stringify(ensemble));

    // A live classifier on the other core(s), fed continuously.
    const workers = Math.max(1, availableParallelism() - 1);
    const offered = options.offeredRate ?? 50;
    const classifier = new Classifier({ ensembleFile, modelsDir, backend: 'wasm', workers, maxBatch: 32, maxWaitMs: 5, topK: 3, logger: silentLogger() });
    await classifier.start();
    const frames: PreparedFrame[] = [];
    for (const l of labels.slice(0, 64)) {
      const bytes = readFileSync(l.file);
      frames.push(await preprocessFrame({ path: l.file, relPath: l.file, sha256: l.sha256, bytes: bytes.length, arrivedAt: Date.now() }, bytes, { maxPixels: 25_000_000, inputs: classifier.inputs() }));
    }
    // Flat out, alone: the most the classifier does on this machine.
    const flatOut = async (seconds: number): Promise<number> => {
      let done = 0;
      let i = 0;
      const inFlight = new Set<Promise<unknown>>();
      const t = performance.now();
      while (performance.now() - t < seconds * 1000) {
        while (inFlight.size < 96) {
          const p = classifier.classify(frames[i++ % frames.length]!).then(() => {
            done++;
            inFlight.delete(p);
          });
          inFlight.add(p);
        }
        await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
      return done / ((performance.now() - t) / 1000);
    };
    await flatOut(3);
    const baseline = await flatOut(options.baselineSeconds ?? 15);
    log(`finetune bench: classification alone ${baseline.toFixed(1)} ROIs/s on ${workers} thread(s); fine-tuning ${labels.length} labels at an offered load of ${offered} ROIs/s`);

    // While fine-tuning: frames offered at a steady rate (the camera's), latency of each recorded.
    let done = 0;
    let feeding = true;
    const latencies: number[] = [];
    const feeder = (async () => {
      let i = 0;
      const inFlight = new Set<Promise<unknown>>();
      const start = performance.now();
      while (feeding) {
        const due = start + (i * 1000) / offered;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const sent = performance.now();
        const p = classifier.classify(frames[i++ % frames.length]!).then(() => {
          done++;
          latencies.push(performance.now() - sent);
          inFlight.delete(p);
        });
        inFlight.add(p);
      }
      await Promise.all(inFlight);
    })();
    // The epochs that apply: a head trained on features reads headEpochs, other layers epochs.
    const configured = config.layers === 'head' ? config.headEpochs : config.epochs;
    const epochs = options.epochs ?? configured;
    const d0 = done;
    const t0 = performance.now();
    const job = startFinetuneWorker({
      runId: 1,
      modelsDir,
      ensemble,
      version: 'ft1',
      train: labels,
      evalLabels: [],
      evalData: null,
      replayData: dataDir,
      seed: 1,
      ...jobSettings(config),
      evalLimit: 0,
      epochs: options.epochs ?? config.epochs,
      headEpochs: options.epochs ?? config.headEpochs,
      maxMinutes: 0,
      backend: 'wasm',
    }, { onProgress: (p) => (p.batch === p.batches ? log(`finetune bench: epoch ${p.epoch}/${p.epochs} done after ${((performance.now() - t0) / 1000).toFixed(0)} s`) : undefined) });
    const result = await job.result;
    const seconds = (performance.now() - t0) / 1000;
    const during = (done - d0) / seconds;
    feeding = false;
    await feeder;
    await classifier.stop();
    return {
      'finetune.architecture': arch,
      'finetune.labels': labels.length,
      'finetune.replayImages': result.members[0]?.replayImages ?? 0,
      'finetune.epochs': epochs,
      'finetune.projectedSecondsForConfiguredEpochs': Math.round((seconds * configured) / epochs),
      'finetune.layers': config.layers,
      'finetune.wallSeconds': Math.round(seconds * 10) / 10,
      'finetune.classifyThreads': workers,
      'finetune.classifyMaxRoisPerSAlone': Math.round(baseline * 10) / 10,
      'finetune.classifyOfferedRoisPerS': offered,
      'finetune.classifyRoisPerSDuring': Math.round(during * 10) / 10,
      'finetune.classifyLatencyP95MsDuring': Math.round(p95(latencies)),
    };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
