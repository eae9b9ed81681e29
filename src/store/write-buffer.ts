// Collects classified frames into batches: one transaction per batch instead of one per frame.
import type { Logger } from '../log.js';
import type { ClassifiedFrame } from '../types.js';
import type { RecordResult } from './store.js';

export interface WriteBufferOptions {
  /** Longest a frame waits before its batch is written (ms). */
  flushMs: number;
  /** A batch this large is written at once. Default 256. */
  maxBatch?: number;
  logger: Logger;
}

export interface WriteBufferHandlers {
  /** After each committed batch: the caller finishes (disposes of) the files. */
  onFlushed(result: RecordResult): void;
  /** The batch could not be written (logged as PW_E_DB); nothing of it is stored. */
  onFailed(batch: ClassifiedFrame[], err: unknown): void;
}

/** The store call a buffer needs; a Store fits. */
export interface BatchWriter {
  recordClassified(batch: readonly ClassifiedFrame[]): RecordResult;
}

/**
 * Buffers classified frames and writes them with `recordClassified` when `maxBatch` are waiting
 * or the oldest has waited `flushMs`. Handlers run synchronously after each write.
 */
export class WriteBuffer {
  private readonly writer: BatchWriter;
  private readonly options: WriteBufferOptions;
  private readonly handlers: WriteBufferHandlers;
  private pending: ClassifiedFrame[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(writer: BatchWriter, options: WriteBufferOptions, handlers: WriteBufferHandlers) {
    this.writer = writer;
    this.options = options;
    this.handlers = handlers;
  }

  /** Queues one frame; writes the batch now if it is full. */
  add(frame: ClassifiedFrame): void {
    this.pending.push(frame);
    if (this.pending.length >= (this.options.maxBatch ?? 256)) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.options.flushMs);
  }

  /** Frames waiting to be written. */
  get size(): number {
    return this.pending.length;
  }

  /** Writes everything waiting now, in one transaction. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    let result: RecordResult;
    try {
      result = this.writer.recordClassified(batch);
    } catch (err) {
      this.options.logger.error({ code: 'PW_E_DB', err, frames: batch.length }, 'writing a batch failed');
      this.guard(() => this.handlers.onFailed(batch, err));
      return;
    }
    this.guard(() => this.handlers.onFlushed(result));
  }

  /** A handler's error must not escape a timer callback and end the process. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.options.logger.error({ code: 'PW_E_INTERNAL', err }, 'write buffer handler failed');
    }
  }

  /** Writes what is waiting and stops the timer (call before closing the store). */
  stop(): void {
    this.flush();
  }
}
