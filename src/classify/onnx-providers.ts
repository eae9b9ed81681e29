// classify.onnxProviders: the ONNX Runtime execution providers plankwatch asks for, in order.
// Kept apart from onnx-runtime.ts so that the config check can use it without loading anything.

/** The execution providers plankwatch knows how to ask for; "auto" tries them in this order. */
export const ONNX_PROVIDERS = ['tensorrt', 'cuda', 'cpu'] as const;
export type OnnxProvider = (typeof ONNX_PROVIDERS)[number];

/** Parse classify.onnxProviders: the providers to try, in order, or what is wrong with it. */
export function parseProviders(setting: string): { order: OnnxProvider[]; error: string | null } {
  const value = setting.trim().toLowerCase();
  if (value === '' || value === 'auto') return { order: [...ONNX_PROVIDERS], error: null };
  const names = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const unknown = names.filter((name) => !(ONNX_PROVIDERS as readonly string[]).includes(name));
  if (unknown.length > 0) return { order: [], error: `unknown execution provider "${unknown[0]}" (known: auto, ${ONNX_PROVIDERS.join(', ')})` };
  return { order: names as OnnxProvider[], error: null };
}
