// A one-line progress bar for training (loss, accuracy, speed, ETA) on a terminal, or a plain
// line every few seconds when the output is a file or journald.
import type { EpochReport, ProgressEvent } from './trainer.js';

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export function progressLine(e: ProgressEvent, width = 24): string {
  const done = Math.round((e.batch / e.batches) * width);
  const bar = '='.repeat(Math.max(0, done - 1)) + (done > 0 ? '>' : '') + ' '.repeat(width - done);
  return `epoch ${e.epoch}/${e.epochs} [${bar}] ${e.batch}/${e.batches} loss ${e.loss.toFixed(4)} acc ${e.accuracy.toFixed(3)} ${e.imagesPerSecond.toFixed(1)} img/s ETA ${formatDuration(e.etaSeconds)}`;
}

export function epochLine(r: EpochReport): string {
  const v = r.validation;
  const val = v ? ` | val top1 ${v.top1.toFixed(4)} top5 ${v.top5.toFixed(4)} logloss ${v.logLoss.toFixed(4)} macroF1 ${v.macroF1.toFixed(4)}` : '';
  return `epoch ${r.epoch}: loss ${r.trainLoss.toFixed(4)} acc ${r.trainAccuracy.toFixed(4)} lr ${r.learningRate.toExponential(2)} ${r.imagesPerSecond.toFixed(1)} img/s ${formatDuration(r.seconds)}${val}`;
}

/** Progress reporter writing to a stream: redraws one line on a TTY, else a line every `everySeconds`. */
export function progressReporter(stream: NodeJS.WriteStream, everySeconds = 30): { onProgress: (e: ProgressEvent) => void; onEpoch: (r: EpochReport) => void } {
  let last = 0;
  return {
    onProgress: (e) => {
      if (stream.isTTY) {
        stream.write(`\r${progressLine(e)}\x1b[K`);
      } else if (performance.now() - last > everySeconds * 1000 || e.batch === e.batches) {
        last = performance.now();
        stream.write(`${progressLine(e)}\n`);
      }
    },
    onEpoch: (r) => {
      stream.write(`${stream.isTTY ? '\r\x1b[K' : ''}${epochLine(r)}\n`);
    },
  };
}
