// The area-averaging shrink works out each output column's source columns and weights once; it
// must give exactly (bit for bit) what computing them for every pixel gave, as training prepared
// its images that way.
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../src/learn/random.js';
import { resize } from '../../src/preprocess/prepare.js';

/** The shrink as first written: weights computed for each pixel. */
function reference(src: Uint8Array, w: number, h: number, outW: number, outH: number): Uint8Array {
  const out = new Uint8Array(outW * outH);
  const sx = w / outW;
  const sy = h / outH;
  for (let oy = 0; oy < outH; oy++) {
    const y0 = oy * sy;
    const y1 = y0 + sy;
    for (let ox = 0; ox < outW; ox++) {
      const x0 = ox * sx;
      const x1 = x0 + sx;
      let sum = 0;
      let weight = 0;
      for (let y = Math.floor(y0); y < Math.min(h, Math.ceil(y1)); y++) {
        const wy = Math.min(y + 1, y1) - Math.max(y, y0);
        for (let x = Math.floor(x0); x < Math.min(w, Math.ceil(x1)); x++) {
          const wx = Math.min(x + 1, x1) - Math.max(x, x0);
          sum += src[y * w + x]! * wx * wy;
          weight += wx * wy;
        }
      }
      out[oy * outW + ox] = Math.round(sum / weight);
    }
  }
  return out;
}

describe('resize (shrinking)', () => {
  it('gives exactly what the per-pixel weights gave, for every ratio', () => {
    const rand = mulberry32(11);
    const sizes: [number, number, number, number][] = [[2, 2, 1, 1], [5, 3, 4, 3], [97, 61, 96, 1], [1, 300, 1, 64], [300, 7, 64, 7], [83, 94, 64, 64], [129, 128, 96, 96], [431, 77, 80, 14], [1000, 999, 80, 80]];
    for (let k = 0; k < 40; k++) {
      const w = 1 + Math.floor(rand() * 400);
      const h = 1 + Math.floor(rand() * 400);
      sizes.push([w, h, 1 + Math.floor(rand() * w), 1 + Math.floor(rand() * h)]);
    }
    for (const [w, h, outW, outH] of sizes) {
      const src = new Uint8Array(w * h);
      for (let i = 0; i < src.length; i++) src[i] = Math.floor(rand() * 256);
      expect(Buffer.from(resize(src, w, h, outW, outH)).equals(Buffer.from(reference(src, w, h, outW, outH))), `${w}x${h} -> ${outW}x${outH}`).toBe(true);
    }
  });
});
