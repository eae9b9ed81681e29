// The parts that store, serve and look up images, wired as the daemon wires them, over real temp
// folders: a real Ingest feeding a real SQLite Store (classification stubbed by a fixed prediction:
// these tests are about which bytes belong to which frame, not about labels), the review routes
// on the real HttpServer, the Finetuner's image lookup, and the exporter's.
import { join } from 'node:path';
import { defaults } from '../../src/config/config.js';
import { readFrameImage } from '../../src/ingest/index.js';
import { Metrics } from '../../src/http/metrics.js';
import { HttpServer } from '../../src/http/server.js';
import type { ProcessedAction } from '../../src/ingest/ingest.js';
import { Finetuner } from '../../src/finetune/finetuner.js';
import { ModelRegistry } from '../../src/registry/registry.js';
import { ReviewStore } from '../../src/review/review-store.js';
import { reviewRoutes } from '../../src/review/routes.js';
import { Store } from '../../src/store/store.js';
import { captureLogger, makeHarness, waitFor, type Harness } from '../ingest/harness.js';
import { classified } from '../store/helpers.js';

export const CLASSES = ['copepod', 'detritus'];

export interface ImageRig {
  h: Harness;
  store: Store;
  review: ReviewStore;
  url: string;
  /** The review routes' log lines. */
  httpLines: Record<string, unknown>[];
  /** The fine-tuner's image file for each validated label (its private lookup, as a run calls it). */
  finetuneFiles(): Promise<{ found: { sha256: string; file: string }[]; missing: number }>;
  /** The exporter's (and the sync thumbnails') image lookup. */
  exportImage(relPath: string, sha256: string): Promise<{ path: string; bytes: Buffer } | null>;
  /** Waits until `n` frames, duplicates and rejects have been settled (finished). */
  settled(n: number, what?: string): Promise<void>;
  stop(): Promise<void>;
}

interface FinetuneLookup {
  resolveImages(labels: ReturnType<ReviewStore['validatedLabels']>): { found: { sha256: string; file: string }[]; missing: number } | Promise<{ found: { sha256: string; file: string }[]; missing: number }>;
}

export async function imageRig(root: string, onProcessed: ProcessedAction, options: { rescanIntervalMs?: number } = {}): Promise<ImageRig> {
  const store = new Store({ path: join(root, 'db', 'pw.sqlite'), countsWindowMs: 60_000, logger: captureLogger().logger });
  store.open();
  const review = new ReviewStore({ repository: store.reviewRepository(), knownClasses: () => CLASSES });
  let finished = 0;
  const h = makeHarness(root, {
    onProcessed,
    emptyStableMs: 200,
    rescanIntervalMs: options.rescanIntervalMs ?? 0,
    isKnown: (rel, size, mtime) => store.sourceOutcome(rel, size, mtime),
    onFile: async (file, hh) => {
      if (store.hasFrame(file.sha256)) {
        store.recordDuplicate(file);
        await hh.ingest.finish(file, 'duplicate');
      } else {
        store.recordClassified([classified(file, 'copepod', Date.now())]);
        await hh.ingest.finish(file, 'processed');
      }
      finished += 1;
    },
    onReject: async (r, hh) => {
      const id = store.recordReject({ relPath: r.relPath, code: r.code, detail: r.detail, bytes: r.bytes, mtimeMs: r.mtimeMs });
      const done = await hh.ingest.finish(r, 'quarantined');
      if (done.dest) store.setQuarantinedPath(id, done.dest);
      finished += 1;
    },
  });
  const images = { watchDir: h.watchDir, archiveDir: h.archiveDir };
  const http = new HttpServer({ port: 0, health: () => ({}), metrics: new Metrics(), logger: captureLogger().logger });
  const httpLog = captureLogger();
  http.register(
    reviewRoutes({
      review,
      counts: store,
      countsWindowMs: 60_000,
      images,
      page: { pageSize: 24, enlargedPx: 160, chartHours: 6, chartRefreshS: 30 },
      logger: httpLog.logger,
    }),
  );
  await http.start();
  const config = { ...defaults().finetune, enabled: false };
  const finetuner = new Finetuner({
    config,
    repository: store.finetuneRepository(),
    review,
    registry: new ModelRegistry({ modelsDir: join(root, 'models'), ensembleFile: join(root, 'models', 'ensemble.json') }),
    images,
    onPromoted: async () => undefined,
    logger: captureLogger().logger,
  });
  await h.ingest.start();
  return {
    h,
    store,
    review,
    url: http.url,
    httpLines: httpLog.lines,
    finetuneFiles: async () => {
      const r = await (finetuner as unknown as FinetuneLookup).resolveImages(review.validatedLabels());
      return { found: r.found.map((f) => ({ sha256: f.sha256, file: f.file })), missing: r.missing };
    },
    exportImage: (relPath, sha256) => readFrameImage(relPath, sha256, [h.archiveDir, h.watchDir]),
    settled: (n, what = `${n} files settled`) => waitFor(() => finished >= n, 10_000, what),
    stop: async () => {
      await h.ingest.stop();
      await http.stop();
      store.close();
    },
  };
}
