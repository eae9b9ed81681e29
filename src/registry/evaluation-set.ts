// Which images a member's metrics were measured on, read from its meta.json: the set's name and
// size, so that figures measured on different sets are never shown as if comparable (a
// fine-tuned member's gate set holds tens of images; its parent's held-out split thousands).
import path from 'node:path';
import type { MemberMeta } from '../classify/meta.js';

export interface EvaluationSet {
  /** e.g. "holdout 5b6871bdcda4-s1-v15" or "fine-tuning gate of run 3". */
  set: string;
  /** Images, where recorded. */
  size: number | null;
}

/** The set a member's metrics name, or null when it records no figures. */
export function evaluationSetOf(meta: Pick<MemberMeta, 'metrics' | 'training'>): EvaluationSet | null {
  const m = meta.metrics ?? {};
  const size = typeof m.evaluatedOn === 'number' ? m.evaluatedOn : null;
  if (typeof m.evaluationSet === 'string' && m.evaluationSet !== '') return { set: m.evaluationSet, size };
  const split = typeof m.split === 'string' ? m.split : null;
  const trainingSplit = typeof meta.training?.split === 'string' ? meta.training.split : null;
  // Members trained here: measured on the validation part of the split their training recorded.
  if (split === 'validation' && trainingSplit) return { set: `holdout ${path.basename(trainingSplit)}`, size };
  // Members fine-tuned before the set was named: measured on that run's gate set.
  const run = (meta.training?.finetune as { run?: unknown } | undefined)?.run;
  if (split === 'finetune-eval' && typeof run === 'number') return { set: `fine-tuning gate of run ${run}`, size };
  if (split) return { set: split, size };
  return typeof m.top1 === 'number' ? { set: 'unrecorded', size } : null;
}

/** The gate's outcome a fine-tuned member records (training.finetune.gate), or null. */
export function finetuneGateOf(meta: Pick<MemberMeta, 'training'>): { verdict: string; promoted: boolean; reason: string } | null {
  const gate = (meta.training?.finetune as { gate?: unknown } | undefined)?.gate as { verdict?: unknown; promoted?: unknown; reason?: unknown } | undefined;
  if (!gate || typeof gate.verdict !== 'string') return null;
  return { verdict: gate.verdict, promoted: gate.promoted === true, reason: typeof gate.reason === 'string' ? gate.reason : '' };
}
