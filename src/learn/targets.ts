// A training batch's target rows: one-hot labels, or labels mixed with a teacher's probabilities.

/**
 * One batch's training targets: (1 − distill) × the one-hot label + distill × the teacher's
 * row, or the one-hot label alone without a teacher.
 */
export function targetRows(out: Float32Array, k: number, indices: ArrayLike<number>, labels: Int32Array, teacher: Float32Array | undefined, distill: number): Float32Array {
  const share = teacher ? distill : 0;
  out.fill(0);
  for (let i = 0; i < indices.length; i++) {
    const idx = indices[i]!;
    const row = out.subarray(i * k, (i + 1) * k);
    if (share > 0) for (let c = 0; c < k; c++) row[c] = share * teacher![idx * k + c]!;
    row[labels[idx]!] = row[labels[idx]!]! + 1 - share;
  }
  return out;
}
