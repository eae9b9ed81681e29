// Model-only inference speed of the classify stage: prepared images (decoded and prepared before
// the clock starts) through the inference threads, for each setup (ONNX Runtime, the wasm path)
// in turn, round after round, so that a slow spell on a shared machine lowers every setup alike.
// Per member: plain forward passes (one view), images/s. The ensemble: every member with its
// views, as the daemon runs it, ROIs/s.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BackendRequest } from '../classify/backend.js';
import type { BatchInput, GenerationSpec, MemberSpec } from '../classify/engine.js';
import { loadEnsemble, type LoadedEnsemble } from '../classify/ensemble-loader.js';
import { ONNX_FILE } from '../classify/onnx-export.js';
import { onnxLayout, type OnnxSettings } from '../classify/onnx-runtime.js';
import { WorkerPool } from '../classify/worker-pool.js';
import { silentLogger } from '../log.js';
import { decodeGray } from '../preprocess/decode.js';
import { prepare, preparedBackground } from '../preprocess/prepare.js';
import { architectureInfo } from '../learn/architectures.js';
import { listImages, type PipelineBenchResult } from './pipeline.js';

/** One way of running the members. */
export interface InferenceSetup {
  name: string;
  backend: BackendRequest;
  /** TensorFlow.js worker threads. */
  workers?: number;
  /** ONNX Runtime inference threads and intra-op threads per thread. */
  onnxWorkers?: number;
  onnx?: OnnxSettings;
}

export interface InferenceBenchOptions {
  dataDir: string;
  ensembleFile: string;
  modelsDir: string;
  setups: InferenceSetup[];
  /** Seconds per figure per round. */
  seconds: number;
  rounds: number;
  /** Images per batch (classify.maxBatch). */
  batch: number;
  log: (line: string) => void;
}

export interface InferenceBenchResult {
  images: number;
  batch: number;
  /** Per setup: per member images/s (one view), and the ensemble's ROIs/s with its views. */
  setups: Record<string, { backend: string; threads: string; members: Record<string, number>; ensembleRoisPerSecond: number }>;
  /** PyTorch inference of the same architectures (random weights, TorchScript frozen), images/s or why not, per thread count. */
  pytorch?: Record<string, Record<string, number | string>>;
}

/** Prepared pixels of `count` images for every input of the ensemble. */
async function preparedInputs(ensemble: LoadedEnsemble, files: string[]): Promise<Map<string, { size: number; pixels: Float32Array }>> {
  const out = new Map<string, { size: number; pixels: Float32Array }>();
  for (const input of ensemble.inputs) out.set(input.key, { size: input.size, pixels: new Float32Array(files.length * input.size * input.size) });
  for (const [i, file] of files.entries()) {
    const gray = await decodeGray(readFileSync(file), { maxPixels: 1e8 });
    for (const input of ensemble.inputs) {
      const area = input.size * input.size;
      out.get(input.key)!.pixels.set(prepare(gray, input.size, input.spec).pixels, i * area);
    }
  }
  return out;
}

function memberSpec(ensemble: LoadedEnsemble, index: number, views: boolean): MemberSpec {
  const m = ensemble.members[index]!;
  return {
    id: `${m.name}/${m.version}`,
    dir: m.dir,
    inputSize: m.meta.input.size,
    inputKey: m.inputKey,
    numClasses: m.meta.classes.length,
    tta: views ? m.tta : ['identity'],
    fill: preparedBackground(m.meta.preprocessing),
    onnxSha256: m.meta.checksums?.[ONNX_FILE] ?? null,
    onnxIo: m.meta.onnx ?? null,
  };
}

/**
 * Keep the pool full for `seconds` with batches cut from the prepared images; returns images/s.
 * Each batch gets its own copy of the pixels (they are moved to the thread).
 */
async function saturate(pool: WorkerPool, gen: GenerationSpec, inputs: Map<string, { size: number; pixels: Float32Array }>, count: number, batch: number, seconds: number): Promise<number> {
  const keys = [...new Set(gen.members.map((m) => m.inputKey))];
  let next = 0;
  const makeBatch = (): BatchInput => {
    const start = next;
    next = (next + batch) % Math.max(1, count - batch);
    return {
      gen: gen.gen,
      count: batch,
      inputs: keys.map((key) => {
        const { size, pixels } = inputs.get(key)!;
        const area = size * size;
        return { key, size, pixels: pixels.slice(start * area, (start + batch) * area) };
      }),
    };
  };
  // Warm-up: one batch per thread.
  await Promise.all(Array.from({ length: pool.size() }, () => pool.dispatch(makeBatch())));
  let done = 0;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  await new Promise<void>((resolve, reject) => {
    let inFlight = 0;
    const pump = (): void => {
      while (performance.now() < deadline && pool.hasCapacity()) {
        inFlight++;
        pool.dispatch(makeBatch()).then(
          () => {
            inFlight--;
            done += batch;
            pump();
          },
          reject,
        );
      }
      if (inFlight === 0) resolve();
    };
    pump();
  });
  return done / ((performance.now() - t0) / 1000);
}

function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

export async function benchInference(o: InferenceBenchOptions): Promise<InferenceBenchResult> {
  const ensemble = await loadEnsemble(o.ensembleFile, o.modelsDir);
  const files = listImages(o.dataDir).filter((_, i, all) => i % Math.max(1, Math.floor(all.length / 512)) === 0).slice(0, 512);
  const inputs = await preparedInputs(ensemble, files);
  o.log(`inference: ${files.length} images prepared for ${ensemble.inputs.length} inputs; batches of ${o.batch}; ${o.rounds} rounds of ${o.seconds} s per figure`);
  const figures = new Map<string, number[]>();
  const threads = new Map<string, string>();
  const add = (key: string, value: number) => figures.set(key, [...(figures.get(key) ?? []), value]);
  for (let round = 0; round < o.rounds; round++) {
    for (const setup of o.setups) {
      const pool = new WorkerPool({ backend: setup.backend, workers: setup.workers ?? 2, onnxWorkers: setup.onnxWorkers, onnx: setup.onnx, maxQueuedPerRunner: 2, logger: silentLogger() });
      const info = await pool.start();
      if (info.name !== (setup.backend === 'auto' ? info.name : setup.backend)) throw new Error(`${setup.name}: asked for ${setup.backend}, got ${info.name}`);
      threads.set(setup.name, info.onnx ? `${pool.size()} x ${info.onnx.threads} intra-op (${info.onnx.provider})` : `${pool.size()} worker(s)`);
      try {
        let gen = 1;
        for (let i = 0; i < ensemble.members.length; i++) {
          const spec: GenerationSpec = { gen: gen++, members: [memberSpec(ensemble, i, false)] };
          await pool.load(spec);
          add(`${setup.name}\t${spec.members[0]!.id}`, await saturate(pool, spec, inputs, files.length, o.batch, o.seconds));
          await pool.unload(spec.gen);
        }
        const all: GenerationSpec = { gen: gen++, members: ensemble.members.map((_, i) => memberSpec(ensemble, i, true)) };
        await pool.load(all);
        const rate = await saturate(pool, all, inputs, files.length, o.batch, o.seconds);
        add(`${setup.name}\tensemble`, rate);
        o.log(`inference: round ${round + 1}, ${setup.name} (${threads.get(setup.name)}): ensemble ${rate.toFixed(1)} ROIs/s`);
      } finally {
        await pool.stop();
      }
    }
  }
  const result: InferenceBenchResult = { images: files.length, batch: o.batch, setups: {} };
  // PyTorch on one thread and on every core: its OpenMP pool suffers more than the others when the cores are shared.
  result.pytorch = {};
  for (const threads of [...new Set([1, os.availableParallelism()])]) {
    const row: Record<string, number | string> = {};
    for (const m of ensemble.members) row[`${m.name}/${m.version}`] = pytorchInference(m.meta.architecture, o.batch, o.seconds, threads);
    result.pytorch[`${threads} thread${threads > 1 ? 's' : ''}`] = row;
  }
  for (const setup of o.setups) {
    const members: Record<string, number> = {};
    for (const m of ensemble.members) members[`${m.name}/${m.version}`] = round1(median(figures.get(`${setup.name}\t${m.name}/${m.version}`)!));
    result.setups[setup.name] = { backend: setup.backend, threads: threads.get(setup.name)!, members, ensembleRoisPerSecond: round1(median(figures.get(`${setup.name}\tensemble`)!)) };
  }
  return result;
}

/**
 * PyTorch CPU inference of an architecture (bench/pytorch_train.py --inference-only, random
 * weights, eval mode) on `threads` threads: images/s, or why it was not run.
 */
export function pytorchInference(architecture: string, batchSize: number, seconds: number, threads: number): number | string {
  // src/bench or dist/bench: the script is two folders up, in bench/.
  const script = path.resolve(import.meta.dirname, '..', '..', 'bench', 'pytorch_train.py');
  if (!existsSync(script)) return 'script missing';
  // Debian's python3-torch lives in the system interpreter, which a pyenv or venv python3 hides.
  const python = [process.env.PLANKWATCH_PYTHON, 'python3', '/usr/bin/python3'].find((p) => p && spawnSync(p, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0);
  if (!python) return 'not installed';
  let info;
  try {
    info = architectureInfo(architecture);
  } catch {
    return `unknown architecture ${architecture}`;
  }
  const run = spawnSync(
    python,
    [script, '--inference-only', '--size', String(info.inputSize), '--blocks', JSON.stringify(info.blocks), '--dense', String(info.dense), '--batch-size', String(batchSize), '--seconds', String(seconds), '--threads', String(threads)],
    { encoding: 'utf8', timeout: 300_000 },
  );
  const m = /inference_images_per_s=([\d.]+)/.exec(run.stdout ?? '');
  return m ? Number(m[1]) : `failed: ${(run.stderr ?? '').trim().split('\n').pop() ?? run.status}`;
}

/** ONNX Runtime as the daemon runs it with the default config (classify.workers 0, classify.onnxThreads 0). */
export const DAEMON_ONNX: Pick<InferenceSetup, 'onnxWorkers' | 'onnx'> = (() => {
  const layout = onnxLayout(0, 0);
  return { onnxWorkers: layout.workers, onnx: { providers: 'auto', threads: layout.threads } };
})();

/** The figures side by side, as the README quotes them. */
export function summarise(pipeline: Record<string, PipelineBenchResult> | undefined, inference: InferenceBenchResult | undefined): string | null {
  const lines: string[] = [];
  if (pipeline && Object.keys(pipeline).length > 0) {
    lines.push('end to end (daemon, real images; ROIs/s: median of the burst rounds):', `  ${'path'.padEnd(8)} ${'ROIs/s'.padStart(8)} ${'p50 ms'.padStart(7)} ${'p95 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'peak RSS MiB'.padStart(13)}  backend; rounds`);
    for (const [name, r] of Object.entries(pipeline)) {
      lines.push(`  ${name.padEnd(8)} ${r.burstRoisPerSecond.toFixed(1).padStart(8)} ${String(r.latencyP50Ms).padStart(7)} ${String(r.latencyP95Ms).padStart(7)} ${String(r.latencyP99Ms).padStart(7)} ${r.peakRssMiB.toFixed(0).padStart(13)}  ${r.backend}; ${(r.bursts ?? [r.burstRoisPerSecond]).join(', ')}`);
    }
    const names = Object.keys(pipeline);
    if (pipeline.onnx && names.length > 1) {
      for (const other of names.filter((n) => n !== 'onnx')) {
        const o = pipeline[other]!;
        const perRound = (pipeline.onnx.bursts ?? []).map((x, i) => (o.bursts?.[i] ? (x / o.bursts[i]!).toFixed(2) : '-'));
        lines.push(`  onnx / ${other}: ${(pipeline.onnx.burstRoisPerSecond / o.burstRoisPerSecond).toFixed(2)}x ROIs/s end to end${perRound.length > 1 ? ` (round by round: ${perRound.join(', ')})` : ''}`);
      }
    }
    lines.push(`  (latency at ${Object.values(pipeline)[0]!.offeredRate} ROIs/s offered, from the file's arrival to its stored result)`);
  }
  if (inference) {
    const setups = Object.entries(inference.setups);
    const members = Object.keys(setups[0]?.[1].members ?? {});
    const width = Math.max(16, ...members.map((m) => m.length));
    lines.push('', `model only (prepared images, batches of ${inference.batch}, both cores; images/s per member, one view; the ensemble with its views in ROIs/s):`);
    lines.push(`  ${''.padEnd(width)} ${setups.map(([name]) => name.padStart(10)).join(' ')}`);
    for (const m of members) lines.push(`  ${m.padEnd(width)} ${setups.map(([, s]) => String(s.members[m] ?? '-').padStart(10)).join(' ')}`);
    lines.push(`  ${'ensemble'.padEnd(width)} ${setups.map(([, s]) => String(s.ensembleRoisPerSecond).padStart(10)).join(' ')}`);
    for (const [threads, row] of Object.entries(inference.pytorch ?? {})) {
      lines.push(`  PyTorch, ${threads} (same architectures, random weights, TorchScript frozen): ${Object.entries(row).map(([m, v]) => `${m} ${v}`).join(', ')}`);
    }
    lines.push(`  threads: ${setups.map(([name, s]) => `${name} ${s.threads}`).join('; ')}`);
  }
  return lines.length > 0 ? lines.join('\n') : null;
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

/** For a quick look: `npx tsx src/bench/inference.ts` (the full bench is `npm run bench`). */
if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  const repoRoot = path.resolve(import.meta.dirname, '../..');
  const result = await benchInference({
    dataDir: process.env.PLANKWATCH_NDSB_DIR ?? path.join(repoRoot, 'test/fixtures/ndsb'),
    ensembleFile: path.join(repoRoot, 'models/ensemble.json'),
    modelsDir: path.join(repoRoot, 'models'),
    setups: [
      { name: 'onnx', backend: 'onnx', ...DAEMON_ONNX },
      { name: 'onnx-2x1', backend: 'onnx', onnxWorkers: 2, onnx: { providers: 'cpu', threads: 1 } },
      { name: 'wasm', backend: 'wasm', workers: os.availableParallelism() },
    ],
    seconds: Number(process.env.BENCH_SECONDS ?? 4),
    rounds: Number(process.env.BENCH_ROUNDS ?? 2),
    batch: 32,
    log: (line) => process.stderr.write(`[bench] ${line}\n`),
  });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}
