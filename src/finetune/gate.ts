// The promotion gate: a candidate ensemble replaces the active one only if, on the frozen
// evaluation set, the classes the active ensemble already knows ("old classes") keep their
// accuracy and no old class with enough examples loses more than the allowed recall. New classes
// are reported apart: what a new class gains never pays for what the old ones lose. When there
// are too few images of old classes to measure them, the gate does not promote at all (the
// candidate waits for a person). Pure: the same numbers always give the same decision and reasons.

export interface GateRules {
  /** Largest allowed drop of the old classes' accuracy, as a fraction (0: must not drop at all). */
  maxAccuracyDrop: number;
  /** Largest allowed drop of one class's recall, as a fraction (0.02: two points). */
  maxRecallDrop: number;
  /** Classes with fewer evaluation images than this are not held to the recall rule. */
  minClassExamples: number;
  /** Fewer evaluation images of old classes than this: nothing to judge by, not promoted. */
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
  /** A class the active ensemble did not know: reported, never held to the rules. */
  isNew: boolean;
  /** Held to the recall rule (an old class with support at least minClassExamples). */
  checked: boolean;
  ok: boolean;
}

/** pass: promote; fail: a rule failed; unmeasured: too few old-class images to judge by. */
export type GateVerdict = 'pass' | 'fail' | 'unmeasured';

export interface GateDecision {
  promote: boolean;
  verdict: GateVerdict;
  /** Why: one sentence per failed rule, or what passed. */
  reason: string;
  failures: string[];
  /** On every evaluation image, new classes included (the headline figure; not a rule). */
  accuracy: { before: number; after: number };
  /** On the images of classes the active ensemble knows: what the accuracy rule judges. */
  oldClasses: { before: number; after: number; count: number };
  classes: ClassComparison[];
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/**
 * The decision. `oldClasses`: the classes the active ensemble knows; without it every class
 * counts as old (the accuracy rule then reads the scores' overall accuracy).
 */
export function decide(before: EnsembleScore, after: EnsembleScore, rules: GateRules, oldClasses?: Iterable<string>): GateDecision {
  const failures: string[] = [];
  const eps = 1e-9;
  const names = [...new Set([...Object.keys(before.perClass), ...Object.keys(after.perClass)])].sort();
  const old = oldClasses ? new Set(oldClasses) : new Set(names);
  const oldScore = oldClasses ? oldClassAccuracy(before, after, old) : { before: before.accuracy, after: after.accuracy, count: after.count };

  const classes: ClassComparison[] = names.map((name) => {
    const b = before.perClass[name] ?? { recall: 0, support: 0 };
    const a = after.perClass[name] ?? { recall: 0, support: b.support };
    const support = Math.max(a.support, b.support);
    const isNew = !old.has(name);
    const checked = !isNew && support >= rules.minClassExamples;
    const ok = !checked || a.recall >= b.recall - rules.maxRecallDrop - eps;
    if (!ok) failures.push(`recall of ${name} would drop from ${pct(b.recall)} to ${pct(a.recall)} (${support} images)`);
    return { name, support, before: b.recall, after: a.recall, isNew, checked, ok };
  });
  const accuracyFails = oldScore.count > 0 && oldScore.after < oldScore.before - rules.maxAccuracyDrop - eps;
  if (accuracyFails) {
    const which = oldClasses ? ` on the ${oldScore.count} images of classes the active ensemble knows` : '';
    failures.unshift(`accuracy would drop from ${pct(oldScore.before)} to ${pct(oldScore.after)}${which}`);
  }
  const unmeasured = oldScore.count < rules.minEvalImages;
  if (unmeasured) {
    failures.unshift(
      `only ${oldScore.count} evaluation images of classes the active ensemble knows (finetune.minEvalImages is ${rules.minEvalImages}): ` +
        'the old classes cannot be measured, so the candidate is not promoted automatically',
    );
  }
  const verdict: GateVerdict = unmeasured ? 'unmeasured' : failures.length > 0 ? 'fail' : 'pass';
  const fresh = classes.filter((c) => c.isNew);
  const newPart = fresh.length > 0 ? `; new class${fresh.length > 1 ? 'es' : ''} ${fresh.map((c) => `${c.name} ${pct(c.after)} (${c.support} images)`).join(', ')}` : '';
  const reason =
    verdict === 'pass'
      ? `accuracy ${pct(oldScore.before)} -> ${pct(oldScore.after)} on ${oldScore.count} images${oldClasses ? ' of known classes' : ''}` +
        `; no class with ${rules.minClassExamples}+ images lost more than ${(rules.maxRecallDrop * 100).toFixed(1)} points of recall${newPart}`
      : failures.join('; ');
  return { promote: verdict === 'pass', verdict, reason, failures, accuracy: { before: before.accuracy, after: after.accuracy }, oldClasses: oldScore, classes };
}

/** Accuracy on the images of `old` classes, from each class's recall and support. */
function oldClassAccuracy(before: EnsembleScore, after: EnsembleScore, old: ReadonlySet<string>): { before: number; after: number; count: number } {
  const sum = (score: EnsembleScore) => {
    let correct = 0;
    let count = 0;
    for (const [name, c] of Object.entries(score.perClass)) {
      if (!old.has(name)) continue;
      correct += Math.round(c.recall * c.support);
      count += c.support;
    }
    return { correct, count };
  };
  const b = sum(before);
  const a = sum(after);
  return { before: b.count > 0 ? b.correct / b.count : 0, after: a.count > 0 ? a.correct / a.count : 0, count: a.count };
}
