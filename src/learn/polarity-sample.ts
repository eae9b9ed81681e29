// A look at a sample of the training or evaluation images before they are prepared: when their
// borders say another polarity than the one declared (--polarity), the run says so at once. The
// mistake it catches is the one that made a dark-field camera's images into bright boxes on black.
import { readFile } from 'node:fs/promises';
import { decodeGray } from '../preprocess/decode.js';
import { detectPolarity, type CameraProfile, type Polarity } from '../preprocess/camera.js';
import type { LabelledImage } from './dataset.js';

/** How many of `count` evenly spaced images have borders of each polarity. */
export async function samplePolarity(items: readonly LabelledImage[], count = 64): Promise<Record<Polarity, number>> {
  const votes: Record<Polarity, number> = { 'bright-field': 0, 'dark-field': 0 };
  const step = Math.max(1, Math.floor(items.length / count));
  for (let i = 0; i < items.length && i / step < count; i += step) {
    try {
      votes[detectPolarity(await decodeGray(await readFile(items[i]!.file), { maxPixels: 64_000_000 }))]++;
    } catch {
      // An unreadable image fails loudly when it is prepared; the sample only looks.
    }
  }
  return votes;
}

/** A warning when most sampled images disagree with the declared polarity; null when they agree (or polarity is auto). */
export function polarityWarning(votes: Record<Polarity, number>, camera: CameraProfile): string | null {
  if (camera.polarity === 'auto') return null;
  const other: Polarity = camera.polarity === 'bright-field' ? 'dark-field' : 'bright-field';
  const total = votes['bright-field'] + votes['dark-field'];
  if (total === 0 || votes[other] * 2 <= total) return null;
  return `warning: ${votes[other]} of ${total} sampled images look ${other} (their borders), but the camera is declared ${camera.polarity}: if the camera is ${other}, stop and pass --polarity ${other} (or auto)`;
}
