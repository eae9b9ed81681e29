// Which validated labels the fine-tuning never trains on: a fixed fraction, chosen per label by
// hashing its frame's sha256 (deterministic, independent of arrival order), then persisted
// (finetune_split) so that a later change of the fraction never moves an evaluation label into
// training.
import { createHash } from 'node:crypto';

const SALT = 'plankwatch-finetune-eval/1';

/** A number in [0, 1) fixed by the frame's sha256. */
export function splitScore(sha256: string): number {
  const h = createHash('sha256').update(SALT).update(sha256).digest();
  return h.readUInt32BE(0) / 2 ** 32;
}

/** 'eval' for about `fraction` of all frames, 'train' for the rest. */
export function splitPart(sha256: string, fraction: number): 'train' | 'eval' {
  return splitScore(sha256) < fraction ? 'eval' : 'train';
}
