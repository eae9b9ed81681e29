// Convolution gradients for the wasm backend, expressed through its fast kernels.
//
// tfjs-backend-wasm has no Conv2DBackpropFilter, and its Conv2DBackpropInput is a plain loop.
// Both gradients of a convolution can be written with kernels that wasm runs through XNNPACK:
//   dW = im2col(x)ᵀ · dy      (kh·kw shifted slices of x concatenated, then one matrix product)
//   dX = conv2d(dilate(dy), rot180(W) with in/out channels swapped)   (a forward convolution)
// registerWasmGradients() installs both as wasm kernels, so that layers models train on wasm
// with the ordinary tf.grad machinery and nothing else changes. It also replaces the wasm kernels
// a training step spends avoidable passes over memory in: the stride-1 convolution and the 2x2
// max pool (SIMD loops), MaxPoolGrad, transposed matrix products, and copies (Identity, Cast to
// the same type), which share memory instead.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { convForwardHeap, directConv } from '../simd/conv.js';
import { winogradConv, winogradConvApplies } from '../simd/winograd-conv.js';
import { directPool2x2, isPool2x2, maxPool2x2Heap } from '../simd/pool.js';
import { convFilterGradHeap, heapKernelsApply, maxPool2x2GradHeap, rotateFilterHeap, tapColumnsHeap, widenChannelsHeap } from './heap-kernels.js';
import { winogradApplies, winogradFilterGrad } from './winograd-filter-grad.js';

interface ConvGradAttrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape?: [number, number, number, number];
  inputShape?: [number, number, number, number];
}

const BACKEND = 'wasm';
let registered = false;

/** Shifts [top, left] of the convolution, as tfjs computes them for this input and filter. */
function convInfo(xShape: [number, number, number, number], filterShape: [number, number, number, number], attrs: ConvGradAttrs) {
  return tf.backend_util.computeConv2DInfo(
    xShape,
    filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
}

/**
 * dW[kh, kw, ci, co] = Σ_{n,y,x} xpad[n, y·s + kh, x·s + kw, ci] · dy[n, y, x, co]. For 3x3 "same"
 * convolutions on even sizes it is computed by Winograd's F(2x2, 3x3) (winograd-filter-grad.ts);
 * with other stride-1 convolutions whose channel counts the SIMD kernel takes (in a multiple of 4,
 * out of 8) it is accumulated in registers straight from x and dy (heap-kernels.ts); otherwise
 * it is computed as
 * one forward convolution with the roles of batch and channels swapped: the padded input
 * transposed to [ci, H, W, n] is convolved ("valid", dilation = stride) with dy transposed to
 * [Ho, Wo, n, co] used as the filter, giving [ci, kh, kw, co]. XNNPACK runs it as one GEMM.
 */
export function conv2dFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: [number, number, number, number], attrs: ConvGradAttrs): tf.Tensor4D {
  return tf.tidy(() => {
    const info = convInfo(x.shape, filterShape, attrs);
    // Stride 1 with channels the SIMD kernel takes: accumulate straight from x and dy. A single
    // input channel has its taps laid out as channels; other counts are zero-padded to a multiple of 4.
    const [kh, kw, ci, co] = filterShape;
    const ci4 = Math.ceil(ci / 4) * 4;
    // 3x3 "same" with even sizes (every layer of the built-in networks but the first): Winograd,
    // 1.4-2.3x faster than the direct sum below.
    if (heapKernelsApply(ci) && winogradApplies(x.shape, dy.shape, filterShape, [info.strideHeight, info.strideWidth], info.padInfo.top, info.padInfo.left)) {
      return winogradFilterGrad(x, dy);
    }
    if (info.strideHeight === 1 && info.strideWidth === 1 && co % 8 === 0 && heapKernelsApply(ci4)) {
      if (ci4 === ci) return convFilterGradHeap(x, dy, filterShape, info.padInfo.top, info.padInfo.left);
      if (ci === 1) {
        // One channel (the first layer's grey image): a filter of one tap column whose kw taps
        // are the input lanes, so that the kernel's lanes are not mostly zero padding.
        const lanes = Math.ceil(kw / 4) * 4;
        const columns = tapColumnsHeap(x, info.outWidth, kw, info.padInfo.left, lanes);
        const dw = convFilterGradHeap(columns, dy, [kh, 1, lanes, co], info.padInfo.top, 0);
        return tf.reshape(tf.slice(dw, [0, 0, 0, 0], [kh, 1, kw, co]), filterShape);
      }
      const widened = widenChannelsHeap(x, ci4);
      const dw = convFilterGradHeap(widened, dy, [kh, kw, ci4, co], info.padInfo.top, info.padInfo.left);
      return tf.slice(dw, [0, 0, 0, 0], filterShape);
    }
    const { top, left } = info.padInfo;
    const { strideHeight: sh, strideWidth: sw, outHeight: ho, outWidth: wo } = info;
    // Rows/columns of the padded input that the filter reaches: (o - 1)·s + k.
    const needH = (ho - 1) * sh + kh;
    const needW = (wo - 1) * sw + kw;
    const [, h, w] = x.shape;
    const bottom = needH - h - top;
    const right = needW - w - left;
    let xt = tf.transpose(x, [3, 1, 2, 0]) as tf.Tensor4D; // [ci, H, W, n]
    let pad: 'valid' | [[number, number], [number, number], [number, number], [number, number]] = 'valid';
    if (top >= 0 && left >= 0 && bottom >= 0 && right >= 0) {
      // Padding inside the convolution: no padded copy of the input.
      if (top || left || bottom || right) pad = [[0, 0], [top, bottom], [left, right], [0, 0]];
    } else {
      xt = tf.pad(xt, [[0, 0], [Math.max(0, top), Math.max(0, bottom)], [Math.max(0, left), Math.max(0, right)], [0, 0]]);
      xt = tf.slice(xt, [0, 0, 0, 0], [xt.shape[0], needH, needW, xt.shape[3]]);
    }
    const dyt = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D; // [Ho, Wo, n, co]
    const r = tf.conv2d(xt, dyt, 1, pad, 'NHWC', [sh, sw]); // [ci, kh, kw, co]
    return tf.transpose(r, [1, 2, 0, 3]) as tf.Tensor4D;
  });
}

/**
 * dX as a forward convolution: insert (stride - 1) zeros between the rows and columns of dy,
 * pad it by (k - 1 - pad) on each side, and convolve with the filter rotated by 180 degrees and
 * its in/out channels swapped.
 */
export function conv2dInputGrad(dy: tf.Tensor4D, w: tf.Tensor4D, inputShape: [number, number, number, number], attrs: ConvGradAttrs): tf.Tensor4D {
  return tf.tidy(() => {
    const info = convInfo(inputShape, w.shape, attrs);
    const [kh, kw, , co] = w.shape;
    const { strideHeight: sh, strideWidth: sw } = info;
    const [n, h, wd] = inputShape;
    let d: tf.Tensor4D = dy;
    if (sh > 1) d = dilate(d, 1, sh);
    if (sw > 1) d = dilate(d, 2, sw);
    // Full-correlation padding; extra rows/cols at the end cover inputs that no output window reached.
    const padTop = kh - 1 - info.padInfo.top;
    const padLeft = kw - 1 - info.padInfo.left;
    const dh = d.shape[1];
    const dw = d.shape[2];
    const padBottom = h + kh - 1 - dh - padTop;
    const padRight = wd + kw - 1 - dw - padLeft;
    const wt = rotateFilterHeap(w);
    if (padTop >= 0 && padLeft >= 0 && padBottom >= 0 && padRight >= 0) {
      // Padding inside the convolution: no padded copy of dy.
      return tf.conv2d(d, wt, 1, [[0, 0], [padTop, padBottom], [padLeft, padRight], [0, 0]]);
    }
    // Crop instead of negative padding (only with unusual explicit paddings).
    let padded: tf.Tensor4D = tf.slice(d, [0, Math.max(0, -padTop), Math.max(0, -padLeft), 0], [n, dh - Math.max(0, -padTop) - Math.max(0, -padBottom), dw - Math.max(0, -padLeft) - Math.max(0, -padRight), co]);
    const pads: [number, number][] = [[0, 0], [Math.max(0, padTop), Math.max(0, padBottom)], [Math.max(0, padLeft), Math.max(0, padRight)], [0, 0]];
    if (pads.some(([a, b]) => a > 0 || b > 0)) padded = tf.pad(padded, pads);
    const dx = tf.conv2d(padded, wt, 1, 'valid');
    return dx;
  });
}

/** Insert (factor - 1) zeros after each element along axis 1 or 2 (the last one trimmed). */
function dilate(t: tf.Tensor4D, axis: 1 | 2, factor: number): tf.Tensor4D {
  const shape = t.shape;
  const zeros = tf.zeros(shape);
  const parts = [t, ...Array.from({ length: factor - 1 }, () => zeros)];
  const stacked = tf.stack(parts, axis + 1); // [.., len, factor, ..]
  const longShape = [...shape] as [number, number, number, number];
  longShape[axis] = shape[axis] * factor;
  const long = tf.reshape(stacked, longShape);
  const keep = [...longShape] as [number, number, number, number];
  keep[axis] = (shape[axis] - 1) * factor + 1;
  return tf.slice(long, [0, 0, 0, 0], keep) as tf.Tensor4D;
}

/**
 * MaxPoolGrad for a 2x2, stride 2, "valid" pool on even sizes whose channel count the SIMD kernel
 * does not take: the gradient goes to the positions equal to the window's maximum, written with
 * broadcasting elementwise kernels (exact ties, rare in floating point, would each receive it).
 * The backend's own MaxPoolGrad misroutes a few windows when channels are not a multiple of 4.
 */
export function maxPool2x2Grad(dy: tf.Tensor4D, x: tf.Tensor4D, y: tf.Tensor4D): tf.Tensor4D {
  if (heapKernelsApply(x.shape[3])) return maxPool2x2GradHeap(dy, x, y);
  return tf.tidy(() => {
    const [, h, w] = x.shape;
    const yUp = tf.image.resizeNearestNeighbor(y, [h, w]);
    const dyUp = tf.image.resizeNearestNeighbor(dy, [h, w]);
    return tf.mul(tf.cast(tf.equal(x, yUp), 'float32'), dyUp);
  });
}

/** The attributes of MaxPool and MaxPoolGrad that decide whether the 2x2 paths take them. */
interface PoolAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: unknown;
  dimRoundingMode?: unknown;
}

function supported(attrs: ConvGradAttrs & { dilations?: number | [number, number] }): boolean {
  if (attrs.dataFormat && attrs.dataFormat !== 'NHWC') return false;
  const d = attrs.dilations;
  if (d != null && (Array.isArray(d) ? d[0] !== 1 || d[1] !== 1 : d !== 1)) return false;
  return true;
}

/** Kernel inputs arrive as the Tensors the op was called with (ops pass Tensors to runKernel). */
function asTensor(info: TensorInfo): tf.Tensor {
  if (info instanceof tf.Tensor) return info;
  return tf.engine().makeTensorFromTensorInfo(info);
}

function asTensor4D(info: TensorInfo): tf.Tensor4D {
  return asTensor(info) as tf.Tensor4D;
}

/**
 * Install the gradient kernels on the wasm backend (idempotent). Conv2DBackpropInput replaces
 * the backend's own loop; the original is kept for data formats this path does not cover.
 */
export function registerWasmGradients(): void {
  if (registered) return;
  registered = true;
  const previousInput = tf.getKernel('Conv2DBackpropInput', BACKEND);

  const filterKernel: KernelFunc = ({ inputs, attrs }) => {
    const a = attrs as unknown as ConvGradAttrs;
    if (!supported(a)) throw new Error('Conv2DBackpropFilter on wasm: only NHWC without dilation is supported.');
    const x = asTensor4D(inputs.x!);
    const dy = asTensor4D(inputs.dy!);
    return conv2dFilterGrad(x, dy, a.filterShape!, a) as unknown as TensorInfo;
  };
  const inputKernel: KernelFunc = (args) => {
    const { inputs, attrs } = args;
    const a = attrs as unknown as ConvGradAttrs;
    if (!supported(a) && previousInput) return previousInput.kernelFunc(args);
    const dy = asTensor4D(inputs.dy!);
    const w = asTensor4D(inputs.filter!);
    return conv2dInputGrad(dy, w, a.inputShape!, a) as unknown as TensorInfo;
  };
  const previousPool = tf.getKernel('MaxPoolGrad', BACKEND);
  const poolKernel: KernelFunc = (args) => {
    const { inputs } = args;
    const a = args.attrs as unknown as PoolAttrs;
    if (!isPool2x2(inputs.input!, a.filterSize, a.strides, a.pad, a.dimRoundingMode) && previousPool) return previousPool.kernelFunc(args);
    return maxPool2x2Grad(asTensor4D(inputs.dy!), asTensor4D(inputs.input!), asTensor4D(inputs.output!)) as unknown as TensorInfo;
  };
  replaceKernel({ kernelName: 'MaxPoolGrad', backendName: BACKEND, kernelFunc: poolKernel, setupFunc: previousPool?.setupFunc });
  const previousMaxPool = tf.getKernel('MaxPool', BACKEND);
  if (previousMaxPool) {
    const maxPoolKernel: KernelFunc = (args) => {
      const x = args.inputs.x!;
      const a = args.attrs as unknown as PoolAttrs;
      if (!directPool2x2(x, a.filterSize, a.strides, a.pad, a.dimRoundingMode)) return previousMaxPool.kernelFunc(args);
      return maxPool2x2Heap(asTensor4D(x)) as unknown as TensorInfo;
    };
    replaceKernel({ kernelName: 'MaxPool', backendName: BACKEND, kernelFunc: maxPoolKernel, setupFunc: previousMaxPool.setupFunc });
  }
  // The wasm BatchMatMul runs its transposed cases 10-20x slower than the plain one (backprop
  // through a dense layer needs both): transpose explicitly, then multiply plainly. Either the
  // operands are transposed (op(A)·op(B)), or the product is computed transposed and turned
  // back ((op(B)ᵀ·op(A)ᵀ)ᵀ), whichever moves fewer values: for the input gradient of a dense
  // layer (dy·Wᵀ) the second transposes dy and the result instead of the whole weight matrix.
  const previousMatMul = tf.getKernel('BatchMatMul', BACKEND);
  if (previousMatMul) {
    const matMulKernel: KernelFunc = (args) => {
      const { inputs, attrs } = args;
      const ta = Boolean(attrs?.transposeA);
      const tb = Boolean(attrs?.transposeB);
      if (!ta && !tb) return previousMatMul.kernelFunc(args);
      return tf.tidy(() => {
        const swapLast = (t: tf.Tensor) => tf.transpose(t, [...Array.from({ length: t.rank - 2 }, (_, i) => i), t.rank - 1, t.rank - 2]);
        const a = asTensor(inputs.a!);
        const b = asTensor(inputs.b!);
        const rows = a.shape[a.rank - (ta ? 1 : 2)]!;
        const cols = b.shape[b.rank - (tb ? 2 : 1)]!;
        const direct = (ta ? a.size : 0) + (tb ? b.size : 0);
        const turned = (ta ? 0 : a.size) + (tb ? 0 : b.size) + (a.size / (a.shape[a.rank - 1]! * a.shape[a.rank - 2]!)) * rows * cols;
        if (direct <= turned) return tf.matMul(ta ? swapLast(a) : a, tb ? swapLast(b) : b);
        return swapLast(tf.matMul(tb ? b : swapLast(b), ta ? a : swapLast(a)));
      }) as unknown as TensorInfo;
    };
    replaceKernel({ kernelName: 'BatchMatMul', backendName: BACKEND, kernelFunc: matMulKernel, setupFunc: previousMatMul.setupFunc });
  }
  replaceKernel({ kernelName: 'Conv2DBackpropFilter', backendName: BACKEND, kernelFunc: filterKernel });
  // tfjs copies every tensor a gradient saves (Engine.clone, an Identity), layers copy what they
  // pass through unchanged, and the gradient of a copy is a Cast to float32: on wasm each is a
  // full pass over memory (about 3% of a pw-vgg-80 training step). Tensors are immutable, so a
  // copy can share the memory as Reshape does; the one kernel here that writes in place (Adam's
  // moments) checks ownsMemory and makes a real copy with copyHeap.
  const previousIdentity = tf.getKernel('Identity', BACKEND);
  if (previousIdentity) replaceKernel({ kernelName: 'Identity', backendName: BACKEND, kernelFunc: (args) => shareOr(previousIdentity.kernelFunc, args, args.inputs.x!.dtype) });
  const previousCast = tf.getKernel('Cast', BACKEND);
  if (previousCast) replaceKernel({ kernelName: 'Cast', backendName: BACKEND, kernelFunc: (args) => shareOr(previousCast.kernelFunc, args, (args.attrs as { dtype: string }).dtype) });
  // The plain convolution (training's forward pass, and the input gradient above, which is one):
  // 3x3 "same" on even sizes by Winograd (../simd/winograd-conv.ts), other stride-1 ones
  // through the direct SIMD loop, which runs 10-40% faster than XNNPACK's here; the backend's own
  // kernel for everything else.
  const previousConv = tf.getKernel('Conv2D', BACKEND);
  if (previousConv) {
    const convKernel: KernelFunc = (args) => {
      const { inputs, attrs } = args;
      const a = attrs as unknown as ConvGradAttrs & { dilations?: number | [number, number] };
      const x = inputs.x!;
      const filter = inputs.filter!;
      if (!a.dataFormat || a.dataFormat === 'NHWC') {
        const conv = directConv(x, filter, a.strides, a.pad, a.dilations, a.dimRoundingMode);
        if (conv && winogradConvApplies(x.shape, filter.shape, conv)) return winogradConv(asTensor4D(x), asTensor4D(filter)) as unknown as TensorInfo;
        if (conv) return convForwardHeap(asTensor4D(x), asTensor4D(filter), conv) as unknown as TensorInfo;
      }
      return previousConv.kernelFunc(args);
    };
    replaceKernel({ kernelName: 'Conv2D', backendName: BACKEND, kernelFunc: convKernel, setupFunc: previousConv.setupFunc });
  }
  replaceKernel({ kernelName: 'Conv2DBackpropInput', backendName: BACKEND, kernelFunc: inputKernel, setupFunc: previousInput?.setupFunc });
}

/** The input itself, its memory shared (reference counted), when the output has its dtype and shape. */
function shareOr(kernel: KernelFunc, args: Parameters<KernelFunc>[0], dtype: string): TensorInfo | TensorInfo[] {
  const x = args.inputs.x!;
  if (x.dtype !== dtype || x.dtype === 'string') return kernel(args);
  (args.backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

function replaceKernel(config: KernelConfig): void {
  if (tf.getKernel(config.kernelName, config.backendName)) tf.unregisterKernel(config.kernelName, config.backendName);
  tf.registerKernel(config);
}

export type { NamedAttrMap };
