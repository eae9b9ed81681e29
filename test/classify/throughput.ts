// Throughput of the classify stage on the NDSB fixture images (not a test; run by hand):
//   npx tsx test/classify/throughput.ts [--ensemble models/ensemble.json --models models] [--workers 2] [--batch 32] [--rounds 10]
// Without --ensemble it measures a tiny untrained test model built in a temporary folder.
import { parseArgs } from 'node:util';
import { Classifier } from '../../src/classify/classifier.js';
import { loadEnsemble } from '../../src/classify/ensemble-loader.js';
import { createLogger } from '../../src/log.js';
import { fixtureImages, prepareFixtures, removeDir, saveTinyMember, tempModelsDir, writeEnsemble } from './helpers.js';

const { values } = parseArgs({
  options: {
    ensemble: { type: 'string' },
    models: { type: 'string', default: 'models' },
    workers: { type: 'string', default: '2' },
    batch: { type: 'string', default: '32' },
    wait: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '10' },
    backend: { type: 'string', default: 'auto' },
  },
});

let tmp: string | null = null;
let ensembleFile = values.ensemble;
let modelsDir = values.models!;
if (!ensembleFile) {
  tmp = await tempModelsDir();
  modelsDir = tmp;
  await saveTinyMember(tmp, { name: 'tiny', version: 'v1', classes: ['a', 'b', 'c'], size: 16, seed: 1 });
  ensembleFile = await writeEnsemble(tmp, { version: 'tiny', voting: 'soft', members: [{ name: 'tiny', version: 'v1' }] });
}

const ensemble = await loadEnsemble(ensembleFile, modelsDir);
const frames = await prepareFixtures(await fixtureImages(), ensemble.inputs);
const logger = createLogger({ level: 'warn' });
const classifier = new Classifier({
  ensembleFile,
  modelsDir,
  backend: values.backend as 'auto',
  workers: Number(values.workers),
  maxBatch: Number(values.batch),
  maxWaitMs: Number(values.wait),
  topK: 3,
  logger,
});
let t = performance.now();
const info = await classifier.start();
const startMs = performance.now() - t;
await Promise.all(frames.map((f) => classifier.classify(f))); // warm-up round
const rounds = Number(values.rounds);
t = performance.now();
for (let r = 0; r < rounds; r++) await Promise.all(frames.map((f) => classifier.classify(f)));
const seconds = (performance.now() - t) / 1000;
const stats = await classifier.stats();
t = performance.now();
await classifier.stop();
const stopMs = performance.now() - t;
if (tmp) await removeDir(tmp);
console.log(
  JSON.stringify(
    {
      ensemble: info.ensembleVersion,
      members: info.members.map((m) => `${m.name}/${m.version} ${m.inputSize}px`),
      tta: info.tta,
      backend: info.backend,
      simd: info.simd,
      workers: info.workers,
      maxBatch: Number(values.batch),
      frames: frames.length * rounds,
      framesPerSecond: Math.round((frames.length * rounds) / seconds),
      batchLatencyMs: Object.fromEntries(Object.entries(stats.batchLatencyMs).map(([k, v]) => [k, Math.round(v * 10) / 10])),
      startMs: Math.round(startMs),
      stopMs: Math.round(stopMs),
    },
    null,
    2,
  ),
);
