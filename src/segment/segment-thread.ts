// The segmentation thread, seen from the stage: one worker thread holding OpenCV and the stream's
// background, fed one camera frame at a time (in arrival order: the background depends on it).
// A thread that dies fails the frames it held (PW_E_SEGMENT) and is started again for the next.
import { Worker } from 'node:worker_threads';
import { PlankwatchError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { SegmentedFile, SegmentReply, SegmentRequest } from './segment-protocol.js';
import type { SegmentedFrame, SegmentSettings } from './settings.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * Compiled, the worker is the .js file beside this one; under the test runner (which runs the .ts
 * sources) a two-line bootstrap registers tsx in the thread first, as in classify/worker-runner.ts.
 */
function workerEntry(): { script: URL | string; eval: boolean } {
  if (!import.meta.url.endsWith('.ts')) return { script: new URL('./segment-worker.js', import.meta.url), eval: false };
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./segment-worker.ts', import.meta.url).href;
  return { script: `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`, eval: true };
}

export class SegmentThread {
  private readonly settings: SegmentSettings;
  private readonly log: Logger;
  private worker: Worker | undefined;
  private ready: Promise<void> | undefined;
  private nextId = 1;
  private readonly calls = new Map<number, { resolve: (r: SegmentReply) => void; reject: (err: Error) => void }>();

  constructor(settings: SegmentSettings, logger: Logger) {
    this.settings = settings;
    this.log = logger;
  }

  /** Starts the thread and loads OpenCV in it (about 0.3 s). */
  async start(): Promise<void> {
    await this.ensure();
  }

  /** Segments one frame; `gray` is moved to the thread (unusable here afterwards). */
  async segment(gray: Uint8Array, width: number, height: number): Promise<SegmentedFrame> {
    await this.ensure();
    const own = gray.byteOffset === 0 && gray.byteLength === gray.buffer.byteLength ? gray : gray.slice();
    const reply = await this.call({ op: 'segment', gray: own.buffer as ArrayBuffer, width, height }, [own.buffer as ArrayBuffer]);
    if (!reply.ok || !reply.result) throw new PlankwatchError('PW_E_SEGMENT', reply.ok ? 'no result' : reply.message);
    return reply.result;
  }

  /**
   * Reads the camera frame at `path` (only if its bytes have `sha256`), decodes and checks it
   * (decodeCameraFrame) and segments it, all in the thread. Throws the PlankwatchError the read or
   * the checks gave (PW_E_IMAGE_*, PW_E_FRAME_*), or PW_E_SEGMENT.
   */
  async segmentFile(path: string, sha256: string, maxPixels: number): Promise<SegmentedFile> {
    await this.ensure();
    const reply = await this.call({ op: 'segmentFile', path, sha256, maxPixels }, []);
    if (!reply.ok && reply.code) throw new PlankwatchError(reply.code as ErrorCode, reply.detail ?? reply.message);
    if (!reply.ok || !reply.result) throw new PlankwatchError('PW_E_SEGMENT', reply.ok ? 'no result' : reply.message);
    return reply.result as SegmentedFile;
  }

  async stop(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.ready = undefined;
    if (w) await w.terminate();
  }

  private ensure(): Promise<void> {
    this.ready ??= this.spawn().catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  private async spawn(): Promise<void> {
    const entry = workerEntry();
    const worker = new Worker(entry.script, { eval: entry.eval, name: 'segment' });
    this.worker = worker;
    worker.on('message', (reply: SegmentReply) => {
      const call = this.calls.get(reply.id);
      this.calls.delete(reply.id);
      call?.resolve(reply);
    });
    const died = (err: Error) => {
      if (this.worker === worker) {
        this.worker = undefined;
        this.ready = undefined;
      }
      for (const [id, call] of this.calls) {
        this.calls.delete(id);
        call.reject(new PlankwatchError('PW_E_SEGMENT', `the segmentation thread stopped: ${err.message}`, { cause: err }));
      }
    };
    worker.on('error', (err) => {
      this.log.error({ code: 'PW_E_SEGMENT', err }, 'the segmentation thread failed; it is started again for the next frame');
      died(err);
    });
    worker.on('exit', (code) => died(new Error(`exit code ${code}`)));
    const reply = await this.call({ op: 'configure', settings: this.settings }, [], worker);
    if (!reply.ok) throw new PlankwatchError('PW_E_SEGMENT', `OpenCV did not start: ${reply.message}`);
  }

  private call(req: DistributiveOmit<SegmentRequest, 'id'>, transfer: ArrayBuffer[], worker = this.worker): Promise<SegmentReply> {
    if (!worker) return Promise.reject(new PlankwatchError('PW_E_SEGMENT', 'the segmentation thread is not running'));
    const id = this.nextId++;
    return new Promise<SegmentReply>((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      worker.postMessage({ ...req, id } as SegmentRequest, transfer);
    });
  }
}
