// Members may have different class lists (fine-tuning adds classes): align them by label name
// over the union of all members' classes, in order of first appearance.

export interface ClassAlignment {
  /** The union of the members' labels: the ensemble's class list. */
  classes: string[];
  /** For each member, the union index of each of its own class indices. */
  maps: Int32Array[];
}

/** Whether two class lists are the same labels in the same order (outputs mean the same thing). */
export function sameClassList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((c, i) => c === b[i]);
}

export function alignClasses(memberClasses: string[][]): ClassAlignment {
  const classes: string[] = [];
  const index = new Map<string, number>();
  const maps = memberClasses.map((own) => {
    const map = new Int32Array(own.length);
    own.forEach((label, i) => {
      let u = index.get(label);
      if (u === undefined) {
        u = classes.length;
        classes.push(label);
        index.set(label, u);
      }
      map[i] = u;
    });
    return map;
  });
  return { classes, maps };
}

/**
 * Place a member's probabilities on the union class list. A class the member does not know gets
 * probability 0 from it, so the aligned vector still sums to 1.
 */
export function toUnion(probs: ArrayLike<number>, map: Int32Array, unionSize: number): Float32Array {
  const out = new Float32Array(unionSize);
  for (let i = 0; i < map.length; i++) out[map[i]!] = probs[i]!;
  return out;
}

/**
 * Rows of probabilities over the classes `from`, placed on the class list `to` (a class `from`
 * lacks gets 0). The same array when the lists are the same.
 */
export function remapRows(probs: Float32Array, from: readonly string[], to: readonly string[]): Float32Array {
  if (sameClassList(from, to)) return probs;
  const n = probs.length / from.length;
  const out = new Float32Array(n * to.length);
  const index = to.map((c) => from.indexOf(c));
  for (let r = 0; r < n; r++) for (let c = 0; c < to.length; c++) if (index[c]! >= 0) out[r * to.length + c] = probs[r * from.length + index[c]!]!;
  return out;
}
