// The promotion gate: a candidate ensemble replaces the active one only if, on the frozen
// evaluation set, its accuracy does not drop and no class with enough examples loses more than
// the allowed recall. Pure: the same numbers always give the same decision and reasons.

export interface GateRules {
  /** Largest allowed drop of overall accuracy, as a fraction (0: must not drop at all). */
  maxAccuracyDrop: number;
  /** Largest allowed drop of one class's recall, as a fraction (0.02: two points). */
  maxRecallDrop: number;
  /** Classes with fewer evaluation images than this are not held to the recall rule. */
  minClassExamples: number;
  /** Fewer evaluation images than this in all: reject (nothing to judge by). */
  minEvalImages: number;
}

export interface ClassScore {
  recall: number;
  support: number;
}

/** Scores of one ensemble on the evaluation set. */
export interface EnsembleScore {
  accuracy: number;
  count: number;
  /** By class name. */
  perClass: Record<string, ClassScore>;
}

export interface ClassComparison {
  name: string;
  support: number;
  before: number;
  after: number;
  /** Held to the recall rule (support at least minClassExamples). */
  checked: boolean;
  ok: boolean;
}

export interface GateDecision {
  promote: boolean;
  /** Why: one sentence per failed rule, or what passed. */
  reason: string;
  failures: string[];
  accuracy: { before: number; after: number };
  classes: ClassComparison[];
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

export function decide(before: EnsembleScore, after: EnsembleScore, rules: GateRules): GateDecision {
  const failures: string[] = [];
  const eps = 1e-9;
  if (after.count < rules.minEvalImages) {
    failures.push(`only ${after.count} evaluation images (finetune.minEvalImages is ${rules.minEvalImages})`);
  }
  if (after.accuracy < before.accuracy - rules.maxAccuracyDrop - eps) {
    failures.push(`accuracy would drop from ${pct(before.accuracy)} to ${pct(after.accuracy)}`);
  }
  const names = [...new Set([...Object.keys(before.perClass), ...Object.keys(after.perClass)])].sort();
  const classes: ClassComparison[] = names.map((name) => {
    const b = before.perClass[name] ?? { recall: 0, support: 0 };
    const a = after.perClass[name] ?? { recall: 0, support: b.support };
    const support = Math.max(a.support, b.support);
    const checked = support >= rules.minClassExamples;
    const ok = !checked || a.recall >= b.recall - rules.maxRecallDrop - eps;
    if (!ok) failures.push(`recall of ${name} would drop from ${pct(b.recall)} to ${pct(a.recall)} (${support} images)`);
    return { name, support, before: b.recall, after: a.recall, checked, ok };
  });
  const promote = failures.length === 0;
  const reason = promote
    ? `accuracy ${pct(before.accuracy)} -> ${pct(after.accuracy)} on ${after.count} images; no class with ${rules.minClassExamples}+ images lost more than ${(rules.maxRecallDrop * 100).toFixed(1)} points of recall`
    : failures.join('; ');
  return { promote, reason, failures, accuracy: { before: before.accuracy, after: after.accuracy }, classes };
}
