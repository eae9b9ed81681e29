// The SIMD module (kernels.wat, assembled into kernels-wasm.ts) bound to the wasm backend's own
// memory, so that its loops read and write tensors where the backend keeps them. Shared by the
// training kernels (../engine/heap-kernels.ts) and the direct convolution (conv.ts) that training
// and the daemon's inference both run. Callers ask heapKernelsApply() / heapKernelsAvailable()
// first (wasm backend active, SIMD in this runtime).
import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { KERNELS_WASM_BASE64 } from './kernels-wasm.js';

// The WebAssembly global as far as this file uses it (the project compiles without DOM types).
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  Memory: abstract new (...args: never[]) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: unknown };
}
const Wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

export interface HeapBackend {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  dataIdMap: { get(dataId: object): { memoryOffset: number; refCount: number } };
  wasm: { HEAPU8: Uint8Array; asm: { memory?: WasmMemory }; _malloc(bytes: number): number; _free(ptr: number): void };
}

export interface SimdKernels {
  bn_stats(x: number, pixels: number, c: number, acc: number): void;
  bn_apply(x: number, y: number, pixels: number, c: number, scale: number, shift: number, alpha: number): void;
  bn_grad_sums(x: number, dy: number, dz: number, pixels: number, c: number, scale: number, shift: number, alpha: number, acc: number): void;
  bn_grad_input(x: number, dz: number, pixels: number, c: number, scale: number, t0: number, t1: number): void;
  max_pool_2x2(x: number, y: number, rows: number, w: number, c: number): void;
  bn_apply_pool(x: number, y: number, rows: number, w: number, c: number, scale: number, shift: number, alpha: number): void;
  bn_pool_grad(
    x: number, dy: number, dz: number, rows: number, w: number, c: number, ascale: number, ashift: number, scale: number, shift: number, alpha: number,
  ): void;
  bn_dz_sums(x: number, dz: number, pixels: number, c: number, acc: number): void;
  max_pool_2x2_grad(x: number, y: number, dy: number, dx: number, rows: number, w: number, c: number): void;
  adam(w: number, g: number, m: number, v: number, wOut: number, n: number, lr: number, b1: number, b2: number, eps: number, c1: number, c2: number): void;
  conv_filter_grad(
    x: number, dy: number, dw: number, n: number, h: number, w: number, ci: number, ho: number, wo: number, co: number,
    kh: number, kw: number, padTop: number, padLeft: number, rows: number, accumulate: number,
  ): void;
  conv_forward(
    x: number, w: number, out: number, zero: number, n: number, h: number, wd: number, ci: number, ho: number, wo: number, co: number,
    kh: number, kw: number, padTop: number, padLeft: number, bias: number, alpha: number,
  ): void;
  pack_filter(src: number, dst: number, rows: number, co: number): void;
  tap_columns(x: number, out: number, rows: number, w: number, wo: number, kw: number, padLeft: number, lanes: number): void;
  wino_input(x: number, u: number, zero: number, h: number, w: number, ci: number, first: number, count: number, plane: number): void;
  wino_grad(dy: number, v: number, h: number, w: number, co: number, first: number, count: number, plane: number): void;
  wino_gemm(u: number, v: number, m: number, count: number, ci: number, co: number, uplane: number, vplane: number): void;
  wino_filter(m: number, dw: number, ci: number, co: number): void;
  wino_weights(w: number, u: number, ci: number, co: number): void;
  wino_output(m: number, out: number, h: number, w: number, co: number, first: number, count: number, plane: number, bias: number, alpha: number): void;
  wino4_input(x: number, u: number, zero: number, h: number, w: number, ci: number, first: number, count: number, plane: number): void;
  wino4_weights(w: number, u: number, ci: number, co: number): void;
  wino4_output(m: number, out: number, h: number, w: number, co: number, first: number, count: number, plane: number, bias: number, alpha: number): void;
  wino4_grad(dy: number, v: number, h: number, w: number, co: number, first: number, count: number, plane: number): void;
  wino4_filter(m: number, dw: number, ci: number, co: number): void;
}

let compiled: object | null | undefined;
const instances = new WeakMap<WasmMemory, SimdKernels>();

export function wasmBackend(): HeapBackend | null {
  return tf.getBackend() === 'wasm' ? (tf.backend() as unknown as HeapBackend) : null;
}

/** The kernels bound to the backend's memory, or null where this runtime lacks wasm SIMD. */
function kernelsFor(be: HeapBackend): SimdKernels | null {
  const memory = be.wasm.asm?.memory;
  if (!(memory instanceof Wasm.Memory)) return null;
  if (compiled === undefined) {
    try {
      compiled = new Wasm.Module(Buffer.from(KERNELS_WASM_BASE64, 'base64'));
    } catch {
      compiled = null;
    }
  }
  if (!compiled) return null;
  let k = instances.get(memory);
  if (!k) {
    k = new Wasm.Instance(compiled, { env: { memory } }).exports as unknown as SimdKernels;
    instances.set(memory, k);
  }
  return k;
}

/** Whether the SIMD kernels are available at all (wasm backend active, SIMD in this runtime). */
export function heapKernelsAvailable(): boolean {
  const be = wasmBackend();
  return be !== null && kernelsFor(be) !== null;
}

/** Whether the kernels below run for a tensor with this many channels on the active backend. */
export function heapKernelsApply(channels: number): boolean {
  const be = wasmBackend();
  return be !== null && channels % 4 === 0 && kernelsFor(be) !== null;
}

export function simd(): { be: HeapBackend; k: SimdKernels } {
  const be = wasmBackend();
  const k = be && kernelsFor(be);
  if (!be || !k) throw new Error('heap kernels need the wasm backend with SIMD');
  return { be, k };
}

/**
 * Allocate the outputs and `scratch` floats of working space, then return a float view of the
 * whole memory and the float index of each input, output and the scratch. The view is taken
 * last: an allocation may grow, and so replace, the memory.
 */
export function prepare(be: HeapBackend, inputs: tf.Tensor[], outputShapes: number[][], scratch: number) {
  for (const t of inputs) if (t.dtype !== 'float32') throw new Error(`heap kernels take float32 tensors, not ${t.dtype}`);
  const infos = outputShapes.map((shape) => be.makeOutput(shape, 'float32'));
  const outs = infos.map((i) => tf.engine().makeTensorFromTensorInfo(i));
  const scratchPtr = scratch > 0 ? be.wasm._malloc(scratch * 4) : 0;
  const heap = new Float32Array(be.wasm.HEAPU8.buffer);
  const at = [...inputs, ...infos].map((t) => be.dataIdMap.get(t.dataId).memoryOffset >>> 2);
  return { heap, at, outs, scratch: scratchPtr >>> 2, free: () => scratch > 0 && be.wasm._free(scratchPtr) };
}
