import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// The committed binary of the SIMD training kernels is the assembly of the committed source.
describe('SIMD kernels', () => {
  it('kernels-wasm.ts is assembled from kernels.wat (node scripts/build-simd.mjs)', async () => {
    const { renderKernelsModule } = (await import('../../scripts/build-simd.mjs')) as { renderKernelsModule: () => Promise<string> };
    const committed = readFileSync(path.resolve(import.meta.dirname, '../../src/simd/kernels-wasm.ts'), 'utf8');
    expect(committed).toBe(await renderKernelsModule());
  });

  // The Winograd F(4x4, 3x3) loops are written out from their transform matrices: a hand edit
  // between the markers would be lost on the next regeneration.
  it('the Winograd region of kernels.wat is what scripts/winograd-wat.mjs generates', async () => {
    const { renderWinogradRegion, currentWinogradRegion } = (await import('../../scripts/winograd-wat.mjs')) as {
      renderWinogradRegion: () => string;
      currentWinogradRegion: () => string;
    };
    expect(currentWinogradRegion()).toBe(renderWinogradRegion());
  });
});
