// `npm run bench`: prints the figures the README quotes. Options:
//   --soak-minutes N   add an N-minute soak at --soak-rate (default 100) ROIs/s, tracking RSS (default 0)
//   --burst N          images in each burst (throughput) round (default 1500)
//   --rounds N         burst rounds per path, the paths taking turns (default 2)
//   --backends LIST    inference paths compared, in one run, on the same images and ensemble
//                      (default "onnx,wasm": ONNX Runtime as the daemon runs it by default, and
//                      the TensorFlow.js wasm path, classify.backend "wasm")
//   --only LIST        run only these parts, comma-separated: pipeline, inference, training, sync, finetune, segment, nav
//   --segment-frames N camera frames (2048 x 2048, 20 ROIs each) in the segment part (default 40)
import os from 'node:os';
import path from 'node:path';
import { benchDataDir } from './data.js';
import { parseArgs } from 'node:util';
import { DAEMON_ONNX, benchInference, summarise, type InferenceBenchResult } from './inference.js';
import { benchPipeline, type PipelineBenchResult } from './pipeline.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const { values } = parseArgs({
  options: {
    'soak-minutes': { type: 'string', default: '0' },
    'soak-rate': { type: 'string', default: '100' },
    burst: { type: 'string', default: '1500' },
    rate: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '60' },
    only: { type: 'string' },
    backends: { type: 'string', default: 'onnx,wasm' },
    'inference-seconds': { type: 'string', default: '5' },
    'inference-rounds': { type: 'string', default: '3' },
    'segment-frames': { type: 'string', default: '40' },
    rounds: { type: 'string', default: '2' },
  },
});
const rounds = Math.max(1, Number(values.rounds));
const backends = values.backends.split(',').map((b) => b.trim()).filter(Boolean);
const only = values.only?.split(',').map((p) => p.trim());
const want = (part: string): boolean => !only || only.includes(part);

const dataDir = (): string => benchDataDir(repoRoot);

const log = (line: string): void => {
  process.stderr.write(`[bench] ${line}\n`);
};
const figures: Record<string, unknown> = {
  machine: `${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
};

if (want('pipeline')) {
  // The paths take turns: a burst each, round after round, so that a slow spell on a shared
  // machine lowers both; the median burst of each is its ROIs/s. Then the latency phase of each.
  const dir = dataDir();
  log(`pipeline: images from ${path.relative(repoRoot, dir) || dir}; paths ${backends.join(', ')}, ${rounds} burst rounds of ${values.burst} images`);
  // 'onnx': the daemon's defaults (classify.backend "auto" picks ONNX Runtime).
  const classifyFor = (backend: string) => (backend === 'onnx' ? {} : { backend });
  const runs = new Map<string, PipelineBenchResult[]>();
  const run = async (backend: string, burst: number, seconds: number): Promise<void> => {
    const r = await benchPipeline({
      repoRoot,
      dataDir: dir,
      burst,
      offeredRate: Number(values.rate),
      offeredSeconds: seconds,
      soakRate: Number(values['soak-rate']),
      soakMinutes: seconds > 0 ? Number(values['soak-minutes']) : 0,
      classify: classifyFor(backend),
      log: (line) => log(`${backend}: ${line}`),
    });
    runs.set(backend, [...(runs.get(backend) ?? []), r]);
  };
  for (let r = 0; r < rounds; r++) for (const backend of backends) await run(backend, Number(values.burst), 0);
  for (const backend of backends) await run(backend, 0, Number(values.seconds));
  const pipeline: Record<string, PipelineBenchResult> = {};
  for (const [backend, list] of runs) {
    const bursts = list.map((x) => x.burstRoisPerSecond).filter((x) => Number.isFinite(x));
    const latency = list[list.length - 1]!;
    pipeline[backend] = { ...latency, burstRoisPerSecond: median(bursts), bursts, peakRssMiB: Math.max(...list.map((x) => x.peakRssMiB)) };
  }
  figures.pipeline = pipeline;
}

if (want('inference')) {
  log('inference: model-only images/s per member and the ensemble, per path, and the PyTorch peer');
  figures.inference = await benchInference({
    dataDir: dataDir(),
    ensembleFile: path.join(repoRoot, 'models/ensemble.json'),
    modelsDir: path.join(repoRoot, 'models'),
    // 'onnx' as the daemon runs it by default (classify.onnxThreads and the thread count from the defaults).
    setups: backends.map((backend) => (backend === 'onnx' ? { name: 'onnx', backend: 'onnx', ...DAEMON_ONNX } : { name: backend, backend: backend as 'wasm', workers: os.availableParallelism() })),
    seconds: Number(values['inference-seconds']),
    rounds: Number(values['inference-rounds']),
    batch: 32,
    log,
  });
}

if (want('training')) {
  const training = await import('./training.js').catch((err: unknown) => ({ error: String(err) }));
  if ('benchTraining' in training && typeof training.benchTraining === 'function') {
    log('training: throughput of the training step vs inference, and the PyTorch CPU peer');
    figures.training = await training.benchTraining();
  } else figures.training = 'not available';
}

if (want('sync')) {
  const { benchSync } = await import('./sync.js');
  figures.sync = await benchSync({ log });
  // Bytes per ROI of live results at 2 ROIs/s: each record at once, then within a 10 s latency
  // budget, then with the navigation series too; and a backlog with them.
  const { benchSyncLive } = await import('./sync-live.js');
  figures.syncLive = [
    await benchSyncLive({ maxDelayMs: 0, log }),
    await benchSyncLive({ maxDelayMs: 10_000, log }),
    await benchSyncLive({ maxDelayMs: 10_000, nav: true, log }),
    await benchSyncLive({ maxDelayMs: 10_000, backlog: 3000, log }),
    await benchSyncLive({ maxDelayMs: 10_000, nav: true, backlog: 3000, log }),
    // Whole camera frames of 20 ROIs: each frame and its ROIs' boxes and measures too.
    await benchSyncLive({ maxDelayMs: 10_000, nav: true, cameraFrames: true, log }),
    await benchSyncLive({ maxDelayMs: 10_000, nav: true, cameraFrames: true, backlog: 3000, log }),
  ];
}

if (want('segment')) {
  const { benchSegment } = await import('./segment.js');
  log('segment: whole 2048x2048 camera frames (ingest.mode "frames"), 20 ROIs each, classified by the default (ONNX) path');
  figures.segment = await benchSegment({ repoRoot, dataDir: dataDir(), frames: Number(values['segment-frames']), roisPerFrame: 20, width: 2048, height: 2048, background: 'running', log: (line) => log(`segment: ${line}`) });
}

if (want('finetune')) {
  const { benchFinetune } = await import('./finetune.js');
  log('finetune: one fine-tuning run on 1,000 new labels, and classification throughput meanwhile');
  figures.finetune = await benchFinetune({ log });
}

if (want('nav')) {
  const { benchNav } = await import('./nav.js');
  log('nav: NMEA/CTD lines decoded per second; ROIs tagged per second against an hour of 1 Hz fixes');
  figures.nav = await benchNav({ log: (line) => log(`nav: ${line}`) });
}

process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
const summary = summarise(figures.pipeline as Record<string, PipelineBenchResult> | undefined, figures.inference as InferenceBenchResult | undefined);
if (summary) process.stdout.write(`\n${summary}\n`);

function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length === 0 ? NaN : v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}
