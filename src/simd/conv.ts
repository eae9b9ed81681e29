// The direct convolution: a stride-1 NHWC convolution as one SIMD loop over the backend's memory
// (kernels.wat "conv_forward"), with the bias and the leaky ReLU of a folded layer applied in the
// same pass. It runs 10-40% faster than the wasm backend's XNNPACK convolution for the small
// channel counts of plankwatch's networks; training uses it for its forward convolutions and
// input gradients (../engine/wasm-gradients.ts), the daemon for its folded layers.
import * as tf from '@tensorflow/tfjs-core';
import { heapKernelsAvailable, prepare, simd } from './heap.js';

export interface DirectConv {
  outShape: [number, number, number, number];
  padTop: number;
  padLeft: number;
}

/**
 * Where the direct loop applies: the wasm backend with SIMD, float32, channels last, stride 1,
 * no dilation, output channels a multiple of 8 and rows of at least 4 output pixels. Returns the
 * output shape and the padding, or null (use the backend's own convolution).
 */
export function directConv(
  x: { shape: number[]; dtype: string },
  filter: { shape: number[]; dtype: string },
  strides: number | [number, number],
  pad: 'same' | 'valid' | number | tf.backend_util.ExplicitPadding,
  dilations: number | [number, number] = 1,
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): DirectConv | null {
  if (x.dtype !== 'float32' || filter.dtype !== 'float32' || x.shape.length !== 4 || !heapKernelsAvailable()) return null;
  const d = Array.isArray(dilations) ? dilations : [dilations, dilations];
  if (d[0] !== 1 || d[1] !== 1) return null;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
  if (info.strideHeight !== 1 || info.strideWidth !== 1 || info.outChannels % 8 !== 0 || info.outWidth < 4) return null;
  return { outShape: info.outShape, padTop: info.padInfo.top, padLeft: info.padInfo.left };
}

/**
 * out[n, y, x, o] = act(Σ x[n, y + a − top, x + b − left, i] · w[a, b, i, o] + bias[o]) for the
 * output shape and padding directConv() returned; act is leaky ReLU max(z, alpha·z) (alpha 0:
 * ReLU; 1, the default: none).
 */
export function convForwardHeap(x: tf.Tensor4D, w: tf.Tensor4D, conv: DirectConv, bias: tf.Tensor1D | null = null, alpha = 1): tf.Tensor4D {
  const { be, k } = simd();
  const [n, h, wd, ci] = x.shape;
  const [kh, kw, , co] = w.shape;
  const [, ho, wo] = conv.outShape;
  if (co % 8 !== 0 || wo < 4) throw new Error(`convForwardHeap: ${co} output channels, ${wo} output columns not supported`);
  if (!(alpha >= 0 && alpha <= 1)) throw new Error(`convForwardHeap: activation slope ${alpha} is not within [0, 1]`);
  const inputs = bias ? [x, w, bias] : [x, w];
  // Scratch: ci zeros (the padding columns read them), then the filter packed tile by tile.
  const zeros = ci + ((8 - (ci % 8)) % 8);
  const { heap, at, outs, scratch, free } = prepare(be, inputs, [conv.outShape], zeros + kh * kw * ci * co);
  heap.fill(0, scratch, scratch + zeros);
  const packed = scratch + zeros;
  const xo = at[0]!;
  const bo = bias ? at[2]! * 4 : 0;
  const oo = at[inputs.length]!;
  k.pack_filter(at[1]! * 4, packed * 4, kh * kw * ci, co);
  k.conv_forward(xo * 4, packed * 4, oo * 4, scratch * 4, n, h, wd, ci, ho, wo, co, kh, kw, conv.padTop, conv.padLeft, bo, alpha);
  free();
  return outs[0] as tf.Tensor4D;
}
