// Child process for inference-memory.test.ts: loads the shipped ensemble's members into ONNX
// Runtime the way the daemon's inference thread does, runs batches of the sizes a day at sea
// brings (1 to 32 frames, twice that for members with two views), and prints its resident memory
// before and after, in MiB, as one JSON line.
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadEnsemble } from '../../src/classify/ensemble-loader.js';
import { OnnxSession, startOnnxRuntime } from '../../src/classify/onnx-runtime.js';

const models = path.resolve(import.meta.dirname, '..', '..', 'models');
const rss = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;

await startOnnxRuntime({ providers: 'cpu', threads: 2 });
const ensemble = await loadEnsemble(path.join(models, 'ensemble.json'), models);
const sessions: { session: OnnxSession; size: number; views: number }[] = [];
for (const m of ensemble.members) {
  const bytes = await readFile(path.join(m.dir, 'model.onnx'));
  const session = await OnnxSession.create(bytes, `${m.name}/${m.version}`, m.meta.input.size, m.meta.classes.length, m.meta.onnx ?? undefined);
  sessions.push({ session, size: m.meta.input.size, views: m.tta.length });
}
const loaded = rss();
for (const frames of [1, 3, 7, 12, 20, 32, 32, 17, 32, 5, 32, 26, 32]) {
  for (const { session, size, views } of sessions) await session.run(new Float32Array(frames * views * size * size).fill(0.5), frames * views);
}
const ran = rss();
for (const { session } of sessions) await session.release();
process.stdout.write(JSON.stringify({ loadedMiB: Math.round(loaded), ranMiB: Math.round(ran) }) + '\n');
