// `plankwatch classify`, `counts`, `status`: one-shot commands that read the models or the database.
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { Classifier } from '../classify/classifier.js';
import { isPlankwatchError, PlankwatchError } from '../errors.js';
import { silentLogger } from '../log.js';
import { preprocessFrame } from '../preprocess/preprocess.js';
import { Store } from '../store/store.js';
import type { CameraFrameTotals } from '../store/index.js';
import { configFrom } from './run.js';
import { sha256Hex } from './util.js';

export function registerInspectCommands(program: Command): void {
  program
    .command('classify')
    .description('Classify image files once with the active ensemble, without the daemon or the database.')
    .argument('<files...>', 'JPEG, PNG or TIFF files')
    .option('-c, --config <file>', 'YAML config file (for the ensemble and backend)')
    .option('--json', 'one JSON object per line: file, label, probability, topK (or error)')
    .action(async (files: string[], opts: { config?: string; json?: boolean }) => {
      const config = configFrom(opts.config);
      const classifier = new Classifier({
        ensembleFile: config.classify.ensemble,
        modelsDir: config.classify.modelsDir,
        backend: config.classify.backend,
        onnx: { providers: config.classify.onnxProviders, threads: config.classify.onnxThreads },
        onnxWorkers: Math.min(files.length, config.classify.workers),
        workers: Math.min(files.length, config.classify.workers > 0 ? config.classify.workers : availableParallelism()),
        maxBatch: config.classify.maxBatch,
        maxWaitMs: 5,
        topK: config.classify.topK,
        camera: config.camera,
        logger: silentLogger(),
      });
      await classifier.start();
      let failures = 0;
      try {
        const results = await Promise.all(
          files.map(async (file) => {
            try {
              const bytes = await readFile(file);
              const incoming = { path: path.resolve(file), relPath: file, sha256: sha256Hex(bytes), bytes: bytes.length, arrivedAt: Date.now() };
              const frame = await preprocessFrame(incoming, bytes, { maxPixels: config.ingest.maxPixels, inputs: classifier.inputs(), camera: config.camera });
              const p = await classifier.classify(frame);
              const size = { areaPx: frame.area, ...(frame.areaUm2 !== undefined ? { areaUm2: Math.round(frame.areaUm2) } : {}), polarity: frame.polarity };
              return { file, label: p.label, probability: round(p.probability), margin: round(p.margin), ...size, topK: p.topK.map((t) => ({ label: t.label, probability: round(t.probability) })) };
            } catch (err) {
              failures++;
              const code = isPlankwatchError(err) ? err.code : 'PW_E_IMAGE_UNREADABLE';
              return { file, error: { code, message: (err as Error).message } };
            }
          }),
        );
        for (const r of results) {
          if (opts.json) process.stdout.write(`${JSON.stringify(r)}\n`);
          else if ('error' in r) process.stdout.write(`${r.file}\t${r.error!.code}\t${r.error!.message}\n`);
          else process.stdout.write(`${r.file}\t${r.label}\t${r.probability.toFixed(3)}\n`);
        }
      } finally {
        await classifier.stop();
      }
      if (failures > 0) process.exitCode = 1;
    });

  program
    .command('counts')
    .description('Counts per class from the database.')
    .option('-c, --config <file>', 'YAML config file (for the database path)')
    .option('--since <when>', 'a duration back from now (30m, 6h, 2d) or an ISO time', '1h')
    .option('--json', 'print JSON: since, total, totals per class, windows')
    .action((opts: { config?: string; since: string; json?: boolean }) => {
      const config = configFrom(opts.config);
      const since = parseSince(opts.since);
      // Read only: a read never migrates the database (the daemon does, at its start) nor waits on it.
      const store = new Store({ path: config.store.path, countsWindowMs: config.store.countsWindowS * 1000, readonly: true, logger: silentLogger() });
      store.open();
      try {
        const c = store.countsSince(since);
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ since: new Date(c.since).toISOString(), total: c.total, totals: c.totals, windows: c.windows })}\n`);
          return;
        }
        process.stdout.write(`counts since ${new Date(c.since).toISOString()} (${c.windows.length} windows of ${config.store.countsWindowS} s)\n`);
        const rows = Object.entries(c.totals).sort((a, b) => b[1] - a[1]);
        const width = Math.max(5, ...rows.map(([label]) => label.length));
        for (const [label, n] of rows) process.stdout.write(`${label.padEnd(width)}  ${String(n).padStart(8)}\n`);
        process.stdout.write(`${'total'.padEnd(width)}  ${String(c.total).padStart(8)}\n`);
      } finally {
        store.close();
      }
    });

  program
    .command('status')
    .description('What the database holds, and the active ensemble.')
    .option('-c, --config <file>', 'YAML config file')
    .option('--json', 'print JSON')
    .action(async (opts: { config?: string; json?: boolean }) => {
      const config = configFrom(opts.config);
      // Read only: a read never migrates the database (the daemon does, at its start) nor waits on it.
      const store = new Store({ path: config.store.path, countsWindowMs: config.store.countsWindowS * 1000, readonly: true, logger: silentLogger() });
      store.open();
      let status;
      let cameraFrames: CameraFrameTotals | null = null;
      try {
        status = store.status();
        // ingest.mode "frames": the whole camera frames, and the ROIs cut from them.
        if (config.ingest.mode === 'frames' && status.schemaVersion >= 8) cameraFrames = store.cameraFrameRepository().totals();
      } finally {
        store.close();
      }
      const ensemble = await readFile(config.classify.ensemble, 'utf8').then((t) => JSON.parse(t) as { version: string; voting: string; members: { name: string; version: string }[] }).catch(() => null);
      const out = {
        database: path.resolve(config.store.path),
        ...status,
        ...(cameraFrames ? { cameraFrames: { ...cameraFrames, roisPerFrame: cameraFrames.segmented > 0 ? round(cameraFrames.rois / cameraFrames.segmented) : 0 } } : {}),
        ensemble: ensemble ? { version: ensemble.version, voting: ensemble.voting, members: ensemble.members.map((m) => `${m.name}@${m.version}`) } : null,
      };
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(out)}\n`);
        return;
      }
      process.stdout.write(
        [
          `database     ${out.database} (${(status.dbBytes / 2 ** 20).toFixed(1)} MiB, schema ${status.schemaVersion})`,
          `frames       ${status.frames}`,
          `predictions  ${status.predictions}`,
          `duplicates   ${status.duplicates}  (files whose content was already stored)`,
          `rejects      ${status.rejects.total}${Object.entries(status.rejects.byCode).map(([k, v]) => `\n  ${k}  ${v}`).join('')}`,
          ...(cameraFrames
            ? [
                `camera frames  ${cameraFrames.done} segmented${cameraFrames.segmented > cameraFrames.done ? ` (${cameraFrames.segmented - cameraFrames.done} waiting for their ROIs)` : ''}, ${cameraFrames.duplicates} duplicates, ${cameraFrames.quarantined} quarantined`,
                `  ROIs cut     ${cameraFrames.rois} (${cameraFrames.segmented > 0 ? (cameraFrames.rois / cameraFrames.segmented).toFixed(1) : '0'} a frame)`,
              ]
            : []),
          `ensemble     ${out.ensemble ? `${out.ensemble.version} (${out.ensemble.voting}: ${out.ensemble.members.join(', ')})` : `unreadable: ${config.classify.ensemble}`}`,
          '',
        ].join('\n'),
      );
    });
}

/** "30m", "6h", "2d", "90s" back from now, or an ISO time. */
export function parseSince(text: string, now = Date.now()): number {
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)$/.exec(text.trim());
  if (m) return now - Number(m[1]) * { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[m[2] as 's' | 'm' | 'h' | 'd'];
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new PlankwatchError('PW_E_CONFIG_INVALID', `--since: "${text}" is neither a duration (30m, 6h, 2d) nor an ISO time`);
  return t;
}

function round(x: number): number {
  return Math.round(x * 10000) / 10000;
}
