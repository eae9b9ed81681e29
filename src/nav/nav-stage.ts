// The navigation and environment stage: reads the inputs, stores fixes and CTD samples, tags every
// stored ROI, sweeps the sampled volume and computes concentrations. Nothing here blocks the
// classification pipeline: tagging runs after the frames are stored, on its own queue.
import type { Config } from '../config/index.js';
import { isPlankwatchError } from '../errors.js';
import type { Logger } from '../log.js';
import type { NavRepository, RoiPosition } from '../store/index.js';
import type { IncomingFile, Part } from '../types.js';
import { CaptureReader, type Capture } from './capture.js';
import { ConcentrationPublisher, type NavPublish } from './concentration-publisher.js';
import { ctdFormat } from './ctd.js';
import { LineDecoder } from './decoder.js';
import type { Tolerances } from './geo.js';
import { createInputs, type NavInput } from './inputs/index.js';
import { SampleRecorder } from './recorder.js';
import { VolumeSweeper } from './sweeper.js';
import { Tagger } from './tagger.js';
import { InputWatch, type NavStats } from './input-watch.js';

export type NavConfig = Config['nav'];
export type { NavStats } from './input-watch.js';

export interface NavStageOptions {
  config: NavConfig;
  instrument: string;
  countsWindowMs: number;
  repository: NavRepository;
  logger: Logger;
  /** Where the MQTT messages go (the publisher); absent: not published. */
  publish?: NavPublish;
  /** Each line's outcome, for the metrics. */
  onSentence?: (outcome: 'ok' | 'bad' | 'ignored', source: string) => void;
  now?: () => number;
}

/** A frame as stored, as the tagger needs it. */
export interface StoredFrame {
  sha256: string;
  path: string;
  relPath: string;
  arrivedAt: number;
}

/** At most this many files' capture reads held between arrival and storage. */
const MAX_NOTED = 10_000;

export class NavStage implements Part {
  readonly name = 'nav';
  private readonly o: NavStageOptions;
  private readonly log: Logger;
  private inputs: NavInput[] = [];
  private decoders = new Map<string, LineDecoder>();
  private recorder: SampleRecorder | undefined;
  private tagger: Tagger | undefined;
  private sweeper: VolumeSweeper | undefined;
  private reader: CaptureReader | undefined;
  private concentrations: ConcentrationPublisher | undefined;
  private readonly noted = new Map<string, Promise<Capture>>();
  private queue: Promise<void> = Promise.resolve();
  private flushTimer: NodeJS.Timeout | undefined;
  private lastLatitude: number | null = null;
  readonly stats: NavStats = { sentences: 0, bad: 0, ignored: 0, clockJumps: 0, fixes: 0, envSamples: 0, tagged: 0, retagged: 0, dropped: 0, inputs: {}, lastFixAt: null };
  private readonly watch: InputWatch;

  constructor(options: NavStageOptions) {
    this.o = options;
    this.log = options.logger.child({ module: 'nav' });
    this.watch = new InputWatch({ log: this.log, stats: this.stats, maxGapS: options.config.maxGapS, onBad: (source) => options.onSentence?.('bad', source) });
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** The inputs, once started (tests read bound ports). */
  get inputList(): readonly NavInput[] {
    return this.inputs;
  }

  async start(): Promise<void> {
    const c = this.o.config;
    const tol: Tolerances = { maxGapMs: c.maxGapS * 1000, maxHoldMs: c.maxHoldS * 1000 };
    const ctd = ctdFormat(c.ctd.pattern, c.ctd.fields);
    this.reader = new CaptureReader({ filenamePattern: c.time.filenamePattern, exif: c.time.exif, perImage: c.sidecar.perImage, folderFile: c.sidecar.folderFile });
    this.tagger = new Tagger(this.o.repository, tol, { depthOffsetM: c.ctd.depthOffsetM, defaultLatitude: c.ctd.latitude });
    this.recorder = new SampleRecorder(this.o.repository, this.tagger, tol);
    if (c.volume.source === 'swept') this.sweeper = new VolumeSweeper({ fovWidthM: c.volume.fovWidthM, depthOfFieldM: c.volume.depthOfFieldM, speed: c.volume.speed, maxGapMs: tol.maxGapMs });
    this.concentrations = new ConcentrationPublisher({
      repository: this.o.repository, instrument: this.o.instrument, windowMs: this.o.countsWindowMs, binM: c.concentrations.depthBinM,
      profileMs: c.concentrations.profileHours * 3_600_000, intervalMs: c.concentrations.intervalS * 1000, logger: this.log, now: () => this.now(),
      ...(this.o.publish ? { publish: this.o.publish } : {}),
    });
    const inputs = createInputs(c, {
      logger: this.log,
      handlers: {
        line: (line, at, source) => this.onLine(line, at, source),
        overflow: (source) => this.watch.bad(source, 'line too long (no end of line)', ''),
        state: (source, up, err) => this.watch.state(source, up, err),
      },
    });
    for (const input of inputs) this.decoders.set(input.source, this.decoderFor(input.source, ctd));
    this.concentrations.start();
    this.flushTimer = setInterval(() => this.flush(), c.flushMs);
    this.flushTimer.unref();
    this.watch.start(() => this.inputs.length);
    try {
      for (const input of inputs) {
        await input.start();
        this.inputs.push(input);
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.queue = this.queue.then(() => this.backfill());
    this.log.info({ inputs: this.inputs.map((i) => i.source), volume: c.volume.source }, 'navigation stage started');
  }

  async stop(): Promise<void> {
    clearInterval(this.flushTimer);
    this.watch.stop();
    for (const input of this.inputs.splice(0).reverse()) {
      try {
        await input.stop();
      } catch (err) {
        this.log.warn({ err, source: input.source }, 'stopping a navigation input failed');
      }
    }
    await this.queue;
    this.flush();
    await this.concentrations?.stop();
  }

  /** For /health: failing while no position fix came for nav.maxGapS (PW_E_NAV_STALE) or every input is down. */
  health(): { ok: boolean; detail: string } {
    return this.watch.health(this.inputs.length);
  }

  /** A file was picked up: its capture time and sidecars are read now, while it is in the watch folder. */
  noteFile(file: IncomingFile): void {
    if (!this.reader) return;
    if (this.noted.size >= MAX_NOTED) this.noted.delete(this.noted.keys().next().value!);
    this.noted.set(file.sha256, this.reader.read(file));
  }

  /** Frames just stored: tagged on the stage's queue (returns at once). */
  tagStored(frames: readonly StoredFrame[]): void {
    if (!this.reader || frames.length === 0) return;
    this.queue = this.queue.then(() => this.tagFrames(frames)).catch((err: unknown) => {
      this.log.error({ err, code: isPlankwatchError(err) ? err.code : 'PW_E_DB', frames: frames.length }, 'tagging ROIs with position failed; they are tagged at the next start');
    });
  }

  /** Resolves once every tagging queued so far is done (tests, replay). */
  async settled(): Promise<void> {
    await this.queue;
    this.flush();
    await this.queue;
  }

  /** Writes the samples held now, and computes the concentrations touched; for tests and stop. */
  flush(): void {
    const recorder = this.recorder;
    if (!recorder || recorder.pending === 0) return;
    try {
      const r = recorder.flush(this.now());
      this.stats.fixes += r.fixes;
      this.stats.envSamples += r.env;
      this.stats.retagged += r.retagged;
      this.concentrations?.touch(r.touched);
    } catch (err) {
      this.stats.dropped = recorder.dropped;
      this.log.error({ err, code: isPlankwatchError(err) ? err.code : 'PW_E_DB', pending: recorder.pending, dropped: recorder.dropped }, 'navigation samples could not be written; kept in memory (the oldest dropped past 200,000) and tried again');
    }
  }

  private decoderFor(source: string, ctd: ReturnType<typeof ctdFormat>): LineDecoder {
    const c = this.o.config;
    return new LineDecoder({ source, requireChecksum: c.requireChecksum, ctd, defaultLatitude: c.ctd.latitude, depthOffsetM: c.ctd.depthOffsetM, latitude: () => this.lastLatitude });
  }

  /** One line from an input; never throws. */
  onLine(line: string, receivedAt: number, source: string): void {
    const decoder = this.decoders.get(source) ?? this.decoders.set(source, this.decoderFor(source, ctdFormat(this.o.config.ctd.pattern, this.o.config.ctd.fields))).get(source)!;
    for (const item of decoder.decode(line, receivedAt)) {
      switch (item.type) {
        case 'bad':
          this.watch.bad(source, item.reason, line);
          break;
        case 'ignored':
          this.stats.ignored++;
          this.o.onSentence?.('ignored', source);
          break;
        case 'jump':
          this.stats.clockJumps++;
          this.log.warn({ code: 'PW_E_NAV_CLOCK', source, from: new Date(item.jump.from).toISOString(), to: new Date(item.jump.to).toISOString() }, `navigation time jumped on ${source}`);
          break;
        case 'fix': {
          this.count(source);
          if (item.row.lat != null) {
            this.lastLatitude = item.row.lat;
            this.stats.lastFixAt = item.row.tMs;
            this.watch.fix(receivedAt, source);
          }
          this.recorder?.addFix(item.row);
          const v = this.sweeper?.push(item.row);
          if (v) this.recorder?.addVolume(v);
          break;
        }
        case 'env':
          this.count(source);
          this.recorder?.addEnv(item.row);
          break;
      }
    }
  }

  private count(source: string): void {
    this.stats.sentences++;
    this.o.onSentence?.('ok', source);
  }

  private async tagFrames(frames: readonly StoredFrame[]): Promise<void> {
    const reader = this.reader!;
    const captures = await Promise.all(frames.map((f) => this.noted.get(f.sha256) ?? reader.read(f)));
    for (const f of frames) this.noted.delete(f.sha256);
    this.flush(); // the samples held so far take part in these tags
    const ids = this.o.repository.frameIds(frames.map((f) => f.sha256));
    const now = this.now();
    const rows: RoiPosition[] = [];
    const volumeFromSidecar = this.o.config.volume.source === 'sidecar';
    frames.forEach((f, i) => {
      const capture = captures[i]!;
      for (const problem of capture.problems) this.log.warn({ code: 'PW_E_NAV_SIDECAR', file: f.relPath, problem }, `sidecar of ${f.relPath} not used`);
      const frameId = ids.get(f.sha256);
      if (frameId === undefined) return;
      const row = this.tagger!.tag({ frameId, t: capture.t, timeSource: capture.timeSource, sidecar: capture.sidecar }, now);
      rows.push(row);
      const volumeM3 = capture.sidecar?.volumeM3;
      if (volumeFromSidecar && volumeM3 !== undefined) this.recorder!.addVolume({ tMs: capture.t, volumeM3, source: 'sidecar', depthM: row.depthM });
    });
    this.o.repository.upsertRoiPositions(rows);
    this.stats.tagged += rows.length;
    this.flush();
    this.concentrations?.touch(rows.map((r) => r.tMs), rows.at(-1));
  }

  /** Frames stored while the stage was off: tagged by file name (or arrival), a page at a time. */
  private async backfill(): Promise<void> {
    let total = 0;
    for (;;) {
      const page = this.o.repository.framesWithoutPosition(500);
      if (page.length === 0 || !this.reader) break;
      const now = this.now();
      const rows = page.map((f) => {
        const c = this.reader!.fromFileName(f.relPath, f.arrivedAt);
        return this.tagger!.tag({ frameId: f.frameId, t: c.t, timeSource: c.timeSource, sidecar: null }, now);
      });
      this.o.repository.upsertRoiPositions(rows);
      this.concentrations?.touch(rows.map((r) => r.tMs));
      total += rows.length;
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (total > 0) this.log.info({ frames: total }, 'tagged frames stored while the navigation stage was off');
  }
}
