// The per-file path through the stages: duplicate check, read, preprocess, classify, batched store,
// then the file's disposal. Errors for one file never stop the others. As a part of the daemon, its
// stop() waits for the files in flight and writes the last batch.
import { IMAGE_FAULT_CODES, isPlankwatchError, PlankwatchError } from '../errors.js';
import { readVerified } from '../ingest/index.js';
import type { Logger } from '../log.js';
import { preprocessDecoded, preprocessFrame, type CameraProfile, type GrayImage, type PreprocessOptions } from '../preprocess/index.js';
import type { Store } from '../store/index.js';
import type { ClassifiedFrame, EnsemblePrediction, IncomingFile, Part, PreparedFrame, RejectCode } from '../types.js';

export type Outcome = 'processed' | 'duplicate' | 'quarantined';

/** What the pipeline needs from the classify stage. */
export interface FrameClassifier {
  classify(frame: PreparedFrame): Promise<EnsemblePrediction>;
  inputs(): PreprocessOptions['inputs'];
}

/** Hooks the daemon passes in to observe the pipeline (metrics, MQTT, disposal of files). */
export interface PipelineHooks {
  /** A file is settled: stored, recorded as duplicate, or rejected. The caller moves it. */
  settled(file: IncomingFile, outcome: Outcome, detail?: { code: RejectCode; rejectId: number }): void;
  /** A batch was committed. */
  stored(frames: ClassifiedFrame[], writeMs: number): void;
  /** A frame's classification failed for a reason that is not the image's fault. */
  failed(file: IncomingFile, err: unknown): void;
}

export interface PipelineOptions {
  store: Store;
  classifier: FrameClassifier;
  maxPixels: number;
  /** What the camera gives (config `camera:`): how images are brought to the canonical form. */
  camera?: CameraProfile;
  /** Longest a classified frame waits for a backlog to fill its write batch (see scheduleFlush). */
  flushMs: number;
  /** Largest write batch. */
  maxWriteBatch: number;
  /**
   * True while the database cannot be written (its disk is full): a file is then given back at
   * once (PW_E_DISK_FULL, through `failed`) instead of being classified for nothing.
   */
  storeFull?: () => boolean;
  /**
   * Longest stop() waits for the files in flight (daemon.shutdownTimeoutS, in ms); those still in
   * flight then stay in the watch folder for the next start. Absent: stop() waits for all.
   */
  drainTimeoutMs?: number;
  hooks: PipelineHooks;
  logger: Logger;
}

export class Pipeline implements Part {
  readonly name = 'pipeline';
  private readonly options: PipelineOptions;
  private readonly log: Logger;
  /** Frames in flight by content hash: a second name for the same bytes waits for the first. */
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Every file taken and not yet settled, for stop() to wait on. */
  private readonly handling = new Set<Promise<void>>();
  private pendingWrites: { item: ClassifiedFrame; done: () => void; fail: (err: unknown) => void }[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private flushSoon: NodeJS.Immediate | undefined;
  private active = 0;
  /** Frames being read, prepared or classified: those a waiting write batch may still get. */
  private coming = 0;

  constructor(options: PipelineOptions) {
    this.options = options;
    this.log = options.logger;
  }

  /** Files between ingest and storage right now. */
  get depth(): number {
    return this.active;
  }

  start(): void {
    // Nothing to start: files arrive through handle() once ingest starts.
  }

  /**
   * Wait for the files in flight (at most drainTimeoutMs), then write the last batch. The daemon
   * stops this part right after ingest, so no new file arrives meanwhile.
   */
  async stop(): Promise<void> {
    const all = Promise.all([...this.handling]);
    let timer: NodeJS.Timeout | undefined;
    const limit = this.options.drainTimeoutMs;
    const timeout = new Promise<'timeout'>((resolve) => {
      if (limit !== undefined) timer = setTimeout(() => resolve('timeout'), limit);
    });
    const result = await Promise.race([all.then(() => 'done' as const), timeout]);
    clearTimeout(timer);
    this.flush();
    if (result === 'timeout') this.log.warn({ inFlight: this.handling.size }, 'stop: files still in flight after daemon.shutdownTimeoutS; they stay in the watch folder and are processed at the next start');
  }

  /**
   * Take one file through every stage. Resolves when it is settled; never rejects. `decoded`: its
   * pixels, when the caller has them in memory (an ROI the segment stage cut and wrote as `file`):
   * the file is then neither read back nor decoded again.
   */
  handle(file: IncomingFile, decoded?: GrayImage): Promise<void> {
    const work = this.settle(file, decoded);
    this.handling.add(work);
    void work.finally(() => this.handling.delete(work));
    return work;
  }

  private async settle(file: IncomingFile, decoded?: GrayImage): Promise<void> {
    this.active++;
    try {
      if (this.options.storeFull?.()) throw new PlankwatchError('PW_E_DISK_FULL', `the database's disk is full: ${file.relPath} waits in the watch folder`);
      // A second name for bytes in flight waits for the first; whatever became of it (stored,
      // quarantined, failed), this file is then judged on what the store holds.
      for (let earlier = this.inFlight.get(file.sha256); earlier; earlier = this.inFlight.get(file.sha256)) {
        await earlier.catch(() => undefined);
      }
      if (this.options.store.hasFrame(file.sha256)) {
        this.settleDuplicate(file);
        return;
      }
      const work = this.process(file, decoded);
      this.inFlight.set(file.sha256, work);
      try {
        await work;
      } finally {
        this.inFlight.delete(file.sha256);
      }
    } catch (err) {
      this.options.hooks.failed(file, err);
    } finally {
      this.active--;
    }
  }

  /** Write whatever is waiting, now. */
  flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    if (this.flushSoon) clearImmediate(this.flushSoon);
    this.flushTimer = undefined;
    this.flushSoon = undefined;
    const batch = this.pendingWrites;
    if (batch.length === 0) return;
    this.pendingWrites = [];
    const started = performance.now();
    let result;
    try {
      result = this.options.store.recordClassified(batch.map((b) => b.item));
    } catch (err) {
      for (const b of batch) b.fail(err);
      return;
    }
    const writeMs = performance.now() - started;
    const alreadyPresent = new Set(result.alreadyPresent);
    if (result.stored.length > 0) this.options.hooks.stored(result.stored, writeMs);
    for (const b of batch) {
      this.options.hooks.settled(b.item.frame.file, alreadyPresent.has(b.item) ? 'duplicate' : 'processed');
      b.done();
    }
  }

  private async process(file: IncomingFile, decoded?: GrayImage): Promise<void> {
    this.coming++;
    let classified: ClassifiedFrame | undefined;
    try {
      classified = await this.classifyFile(file, decoded);
    } finally {
      this.coming--;
      // Rejected or failed: a batch that waited for this frame may not need to wait any longer.
      if (!classified) this.scheduleFlush();
    }
    if (classified) await this.write(classified);
  }

  /** Read, prepare and classify; undefined when the image is rejected (recorded as such). */
  private async classifyFile(file: IncomingFile, decoded?: GrayImage): Promise<ClassifiedFrame | undefined> {
    let frame: PreparedFrame;
    const options = { maxPixels: this.options.maxPixels, inputs: this.options.classifier.inputs(), camera: this.options.camera };
    try {
      if (decoded) {
        frame = preprocessDecoded(file, decoded, options);
      } else {
        // Only the bytes that were hashed are classified: never through a link, never from a FIFO.
        // Bytes that changed since hashing (PW_E_IMAGE_MISMATCH) are not this frame: the file stays
        // in the watch folder and the next rescan hashes it again as what it now is.
        const bytes = await readVerified(file.path, file.sha256).catch((err: unknown) => {
          if (isPlankwatchError(err)) throw err;
          throw new PlankwatchError('PW_E_IMAGE_UNREADABLE', (err as Error).message, { cause: err });
        });
        frame = await preprocessFrame(file, bytes, options);
      }
    } catch (err) {
      if (isPlankwatchError(err) && IMAGE_FAULT_CODES.has(err.code)) {
        this.reject(file, err.code as RejectCode, err.detail);
        return undefined;
      }
      throw err;
    }
    const prediction = await this.options.classifier.classify(frame);
    return { frame, prediction, classifiedAt: Date.now() };
  }

  /** Queue `classified` for the next write batch; resolves once it is written. */
  private write(classified: ClassifiedFrame): Promise<void> {
    return new Promise<void>((done, fail) => {
      this.pendingWrites.push({ item: classified, done, fail });
      this.scheduleFlush();
    });
  }

  /**
   * When the waiting batch is written: now when it is full; at the end of this turn of the event
   * loop when no full batch is on its way, so that the frames classified together (one inference
   * batch) share a transaction and an idle pipeline stores a frame without waiting; and within
   * flushMs when enough frames to fill it are being read, prepared or classified (a backlog, whose
   * frames have waited in the queue anyway).
   */
  private scheduleFlush(): void {
    const waiting = this.pendingWrites.length;
    const { maxWriteBatch, flushMs } = this.options;
    if (waiting === 0) return;
    if (waiting >= maxWriteBatch) this.flush();
    else if (waiting + this.coming < maxWriteBatch) this.flushSoon ??= setImmediate(() => this.flush());
    else this.flushTimer ??= setTimeout(() => this.flush(), flushMs);
  }

  /** Record a file the daemon will not classify. */
  reject(file: IncomingFile, code: RejectCode, detail: string): void {
    const rejectId = this.options.store.recordReject({
      relPath: file.relPath,
      code,
      detail,
      sha256: file.sha256 || null,
      bytes: file.bytes,
      mtimeMs: file.mtimeMs ?? null,
    });
    this.log.warn({ code, file: file.relPath, detail }, `quarantined ${file.relPath}: ${detail}`);
    this.options.hooks.settled(file, 'quarantined', { code, rejectId });
  }

  private settleDuplicate(file: IncomingFile): void {
    this.options.store.recordDuplicate(file);
    this.log.info({ file: file.relPath, sha256: file.sha256 }, 'duplicate content: recorded, not classified again');
    this.options.hooks.settled(file, 'duplicate');
  }
}
