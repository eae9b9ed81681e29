// The preprocess stage: file bytes in, one prepared tensor per ensemble input size out.
import type { IncomingFile, PreparedFrame, PreparedImage, PreprocessSpec } from '../types.js';
import { decodeGray } from './decode.js';
import { inputKey, organismArea, prepare } from './prepare.js';

export interface PreprocessOptions {
  maxPixels: number;
  /** One entry per distinct input (size + spec) that the active ensemble needs; the frame keys each by inputKey. */
  inputs: { size: number; spec: PreprocessSpec }[];
}

/** Decode and prepare one frame. Throws PlankwatchError (an image reject code) for bad input. */
export async function preprocessFrame(file: IncomingFile, bytes: Buffer, options: PreprocessOptions): Promise<PreparedFrame> {
  const image = await decodeGray(bytes, { maxPixels: options.maxPixels });
  const inputs = new Map<string, PreparedImage>();
  for (const input of options.inputs) inputs.set(inputKey(input.size, input.spec), prepare(image, input.size, input.spec));
  const background = options.inputs[0]?.spec.background ?? 255;
  return {
    file,
    width: image.width,
    height: image.height,
    area: organismArea(image, background),
    format: image.format,
    inputs,
  };
}
