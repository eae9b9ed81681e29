// The segment stage (ingest.mode "frames"): each whole camera frame the ingest stage hands over is
// read, checked, segmented in the segmentation thread, its ROIs written as images and recorded with
// their place and measures, and each ROI sent down the same path as a camera-cut ROI (classify,
// store, publish…). The camera frame is settled (archived, deleted or left) once every ROI is
// stored; one whose ROIs could not all be stored stays for the next scan, which takes up the same
// ROIs again (nothing is classified twice: the store knows the ROIs already done).
import { IMAGE_FAULT_CODES, isPlankwatchError, PlankwatchError } from '../errors.js';
import type { Logger } from '../log.js';
import type { GrayImage } from '../preprocess/index.js';
import type { CameraFrameInsert, CameraFrameRepository, CameraFrameRoiInsert } from '../store/index.js';
import type { IncomingFile, Part, RejectCode } from '../types.js';
import { roiImageIntact, roiPath, roiRelPath, writeRoiImages } from './roi-files.js';
import { SegmentThread } from './segment-thread.js';
import type { SegmentedFrame, SegmentSettings } from './settings.js';

/** Codes of a camera frame that is itself at fault: recorded as a reject and quarantined. */
const FRAME_CODES: ReadonlySet<string> = new Set<string>([...IMAGE_FAULT_CODES, 'PW_E_FRAME_BIT_DEPTH', 'PW_E_FRAME_BLANK']);

/** An ROI as recorded, with the size of its image file. */
type Roi = CameraFrameRoiInsert & { bytes: number };

/** Camera frames decoded or being segmented at once (each 4 MB at 2048 × 2048). */
const FRAMES_AT_ONCE = 2;

export interface SegmentStageHooks {
  /**
   * Send one ROI down the classification path; resolves once it is settled (never rejects).
   * `decoded`: its pixels, when just cut (the PNG written as `roi` holds the same), so that they
   * need not be read back and decoded.
   */
  classify(roi: IncomingFile, decoded?: GrayImage): Promise<void>;
  /** True when the ROI with these bytes is stored (classified). */
  roiStored(sha256: string): boolean;
  /** A camera frame was segmented into this many ROIs (recorded; not yet classified). */
  segmented?(file: IncomingFile, rois: number): void;
  /** Record the camera frame as rejected (quarantined). */
  reject(file: IncomingFile, code: RejectCode, detail: string): void;
  /** The camera frame is settled: every ROI stored ('processed'), or the same bytes were done before ('duplicate'). */
  settled(file: IncomingFile, outcome: 'processed' | 'duplicate'): void;
  /** Not the frame's fault (a thread, the disk): the camera frame stays for the next scan. */
  failed(file: IncomingFile, err: unknown): void;
}

export interface SegmentStageOptions {
  settings: SegmentSettings;
  /** camera.pixelSizeUm; 0: unknown (sizes stay in pixels). */
  pixelSizeUm: number;
  /** segment.frameVolumeL; 0: unknown (no volume sample). */
  frameVolumeL: number;
  /** ingest.maxPixels. */
  maxPixels: number;
  /** Folder the ROI images are written under (ingest.archiveDir). */
  roiRoot: string;
  repository: CameraFrameRepository;
  hooks: SegmentStageHooks;
  logger: Logger;
  now?: () => number;
}

export class SegmentStage implements Part {
  readonly name = 'segment';
  private readonly options: SegmentStageOptions;
  private readonly log: Logger;
  private readonly thread: SegmentThread;
  private readonly rois = new WeakSet<IncomingFile>();
  /** Camera frames in flight by content: a second name for the same bytes waits for the first. */
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly handling = new Set<Promise<void>>();
  private slots = FRAMES_AT_ONCE;
  private readonly waiting: (() => void)[] = [];

  constructor(options: SegmentStageOptions) {
    this.options = options;
    this.log = options.logger;
    this.thread = new SegmentThread(options.settings, options.logger);
  }

  /** Starts the segmentation thread (OpenCV loads in it). Throws PW_E_SEGMENT when it cannot. */
  async start(): Promise<void> {
    await this.thread.start();
    this.log.info({ background: this.options.settings.background, threshold: this.options.settings.threshold, polarity: this.options.settings.polarity }, 'segmentation started');
  }

  /** Waits for the camera frames in flight, then stops the thread. */
  async stop(): Promise<void> {
    await Promise.allSettled([...this.handling]);
    await this.thread.stop();
  }

  /** True for the ROI files this stage sent to classification (they are not disposed of like watch folder files). */
  isRoi(file: IncomingFile): boolean {
    return this.rois.has(file);
  }

  /** Take one camera frame through segmentation and its ROIs through classification. Never rejects. */
  handle(file: IncomingFile): Promise<void> {
    const work = this.settle(file);
    this.handling.add(work);
    void work.finally(() => this.handling.delete(work));
    return work;
  }

  private async settle(file: IncomingFile): Promise<void> {
    try {
      for (let earlier = this.inFlight.get(file.sha256); earlier; earlier = this.inFlight.get(file.sha256)) await earlier.catch(() => undefined);
      const work = this.process(file);
      this.inFlight.set(file.sha256, work);
      try {
        await work;
      } finally {
        this.inFlight.delete(file.sha256);
      }
    } catch (err) {
      const { hooks } = this.options;
      try {
        if (isPlankwatchError(err) && FRAME_CODES.has(err.code)) hooks.reject(file, err.code as RejectCode, err.detail);
        else hooks.failed(file, err);
      } catch (stored) {
        hooks.failed(file, stored); // the reject could not be stored (a full disk): tried again at the next scan
      }
    }
  }

  private async process(file: IncomingFile): Promise<void> {
    const { repository, hooks } = this.options;
    const now = this.options.now ?? Date.now;
    const existing = repository.bySha(file.sha256);
    if (existing?.doneAt != null) {
      repository.recordDuplicate({ sha256: file.sha256, relPath: file.relPath, bytes: file.bytes, mtimeMs: file.mtimeMs ?? null }, now());
      this.log.info({ file: file.relPath, sha256: file.sha256 }, 'duplicate camera frame: recorded, not segmented again');
      hooks.settled(file, 'duplicate');
      return;
    }
    // Segmented before a stop: the same ROIs again, when their images are all still there.
    let id = existing?.id;
    let rois = existing ? await this.intactRois(existing.id) : undefined;
    let crops: GrayImage[] = [];
    if (!rois) {
      const recorded = await this.withSlot(() => this.segment(file));
      id = recorded.id;
      rois = recorded.rois;
      crops = recorded.crops;
    }
    // The ROIs of one frame reach the classifier together, so that they share its batches.
    await Promise.all(rois.map((roi, i) => hooks.classify(this.roiFile(file, roi), crops[i])));
    const missing = rois.filter((r) => !hooks.roiStored(r.sha256)).length;
    if (missing > 0) throw new PlankwatchError('PW_E_SEGMENT', `${missing} of the ${rois.length} ROIs of ${file.relPath} could not be stored; the camera frame is taken up again at the next scan`);
    repository.markDone(id!, { sha256: file.sha256, relPath: file.relPath, bytes: file.bytes, mtimeMs: file.mtimeMs ?? null }, now());
    hooks.settled(file, 'processed');
  }

  /** Read, check, segment, write the ROI images, record. */
  private async segment(file: IncomingFile): Promise<{ id: number; rois: Roi[]; crops: GrayImage[] }> {
    const o = this.options;
    const now = o.now ?? Date.now;
    // Read (only the bytes that were hashed), checked and decoded in the thread too: the frame's
    // buffers never reach this thread's heap.
    const seg = await this.thread.segmentFile(file.path, file.sha256, o.maxPixels);
    const { rois, crops } = await this.writeRois(file, seg);
    const insert: CameraFrameInsert = {
      sha256: file.sha256,
      relPath: file.relPath,
      bytes: file.bytes,
      mtimeMs: file.mtimeMs ?? null,
      width: seg.width,
      height: seg.height,
      format: seg.format,
      polarity: seg.polarity,
      backgroundGrey: seg.backgroundGrey,
      components: seg.components,
      rejected: seg.rejected,
      pixelSizeUm: o.pixelSizeUm > 0 ? o.pixelSizeUm : null,
      volumeM3: o.frameVolumeL > 0 ? o.frameVolumeL / 1000 : null,
      capturedAt: file.mtimeMs ?? file.arrivedAt,
      arrivedAt: file.arrivedAt,
      segmentedAt: now(),
      segmentMs: seg.ms,
      rois,
    };
    const id = o.repository.recordSegmented(insert);
    o.hooks.segmented?.(file, rois.length);
    this.log.info({ file: file.relPath, rois: rois.length, components: seg.components, rejected: seg.rejected, ms: Math.round(seg.ms) }, `segmented ${file.relPath}: ${rois.length} ROIs`);
    return { id, rois, crops };
  }

  /** Writes each ROI's image; its record and its pixels (as the PNG holds them), in order. */
  private async writeRois(file: IncomingFile, seg: SegmentedFrame): Promise<{ rois: Roi[]; crops: GrayImage[] }> {
    const um = this.options.pixelSizeUm > 0 ? this.options.pixelSizeUm : null;
    const crops = seg.rois.map((g, i): GrayImage & { relPath: string } => ({
      relPath: roiRelPath(file.relPath, file.sha256, g.index),
      gray: seg.crops[i]!,
      width: g.cropWidth,
      height: g.cropHeight,
      format: 'png',
    }));
    const written = await writeRoiImages(this.options.roiRoot, crops);
    const rois = seg.rois.map((g, i): Roi => {
      const { index, x, y, width, height, cropX, cropY, cropWidth, cropHeight, areaPx, majorPx, minorPx, orientationDeg, meanGrey } = g;
      return {
        index, x, y, width, height, cropX, cropY, cropWidth, cropHeight, areaPx, majorPx, minorPx, orientationDeg, meanGrey,
        sha256: written[i]!.sha256,
        relPath: crops[i]!.relPath,
        bytes: written[i]!.bytes,
        areaUm2: um === null ? null : areaPx * um * um,
        majorUm: um === null ? null : majorPx * um,
        minorUm: um === null ? null : minorPx * um,
      };
    });
    return { rois, crops };
  }

  /** The recorded ROIs of a camera frame, when every image is still on disk as recorded. */
  private async intactRois(cameraFrameId: number): Promise<Roi[] | undefined> {
    const rows = this.options.repository.roisOf(cameraFrameId);
    const sizes = await Promise.all(rows.map((r) => roiImageIntact(this.options.roiRoot, r.relPath, r.sha256)));
    if (rows.length === 0 || sizes.some((b) => b === undefined)) return undefined;
    return rows.map((r, i) => ({ ...r, bytes: sizes[i]! }));
  }

  private roiFile(cameraFrame: IncomingFile, roi: Roi): IncomingFile {
    const file: IncomingFile = {
      path: roiPath(this.options.roiRoot, roi.relPath),
      relPath: roi.relPath,
      sha256: roi.sha256,
      bytes: roi.bytes,
      arrivedAt: cameraFrame.arrivedAt,
    };
    this.rois.add(file);
    return file;
  }

  private async withSlot<T>(work: () => Promise<T>): Promise<T> {
    if (this.slots === 0) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.slots -= 1;
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.slots += 1;
    }
  }
}
