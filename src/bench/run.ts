// `npm run bench`: prints the figures the README quotes. Options:
//   --soak-minutes N   add an N-minute soak at --soak-rate (default 100) ROIs/s, tracking RSS (default 0)
//   --burst N          images in the throughput phase (default 3000)
//   --only pipeline|training|sync   run one part
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { benchPipeline } from './pipeline.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const { values } = parseArgs({
  options: {
    'soak-minutes': { type: 'string', default: '0' },
    'soak-rate': { type: 'string', default: '100' },
    burst: { type: 'string', default: '3000' },
    rate: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '60' },
    only: { type: 'string' },
  },
});

function dataDir(): string {
  const candidates = [process.env.PLANKWATCH_NDSB_DIR, path.resolve(repoRoot, '../shared/data/ndsb/train'), path.join(repoRoot, 'test/fixtures/ndsb')];
  for (const c of candidates) if (c && existsSync(c)) return c;
  throw new Error('no image folder found');
}

const log = (line: string): void => {
  process.stderr.write(`[bench] ${line}\n`);
};
const figures: Record<string, unknown> = {
  machine: `${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
};

if (!values.only || values.only === 'pipeline') {
  const dir = dataDir();
  log(`pipeline: images from ${path.relative(repoRoot, dir) || dir}`);
  figures.pipeline = await benchPipeline({
    repoRoot,
    dataDir: dir,
    burst: Number(values.burst),
    offeredRate: Number(values.rate),
    offeredSeconds: Number(values.seconds),
    soakRate: Number(values['soak-rate']),
    soakMinutes: Number(values['soak-minutes']),
    log,
  });
}

if (!values.only || values.only === 'training') {
  const training = await import('./training.js').catch((err: unknown) => ({ error: String(err) }));
  if ('benchTraining' in training && typeof training.benchTraining === 'function') {
    log('training: throughput of the training step vs inference, and the PyTorch CPU peer');
    figures.training = await training.benchTraining();
  } else figures.training = 'not available';
}

if (!values.only || values.only === 'sync') {
  const { benchSync } = await import('./sync.js');
  figures.sync = await benchSync({ log });
}

if (!values.only || values.only === 'finetune') {
  const { benchFinetune } = await import('./finetune.js');
  log('finetune: one fine-tuning run on 1,000 new labels, and classification throughput meanwhile');
  figures.finetune = await benchFinetune({ log });
}

process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
