// The ship's own frames to replay while fine-tuning: frames the ensemble classified with high
// confidence (probability at least finetune.replayMinProbability, every member agreeing) and
// nobody has labelled, the newest first, per class. A frame of the gate slice (recorded in
// finetune_split as 'eval', or hashing to it) is never one of them: gate frames are never trained on.
import type { FinetuneRepository } from '../store/index.js';
import { splitPart } from './split.js';

export interface ConfidentFrame {
  sha256: string;
  /** The ensemble's label, taken as the frame's class. */
  label: string;
}

export interface ConfidentFrameQuery {
  /** Classes to draw from (the active ensemble's). */
  classes: readonly string[];
  /** Frames wanted per class (twice as many are offered: some images may be gone). */
  perClass: number;
  minProbability: number;
  /** finetune.evalFraction: frames hashing to the gate slice are left out. */
  evalFraction: number;
}

/** Up to 2 x perClass confident frames of each class, none of the gate slice. */
export function confidentFrames(rows: FinetuneRepository, query: ConfidentFrameQuery): ConfidentFrame[] {
  if (query.perClass <= 0 || query.classes.length === 0) return [];
  const out: ConfidentFrame[] = [];
  const want = query.perClass * 2;
  for (const label of [...query.classes].sort()) {
    // Ask for more than wanted: some hash into the gate slice and are dropped here.
    const frames = rows.confidentFrames(label, query.minProbability, want * 2 + 8);
    out.push(...frames.filter((r) => splitPart(r.sha256, query.evalFraction) === 'train').slice(0, want));
  }
  return out;
}
