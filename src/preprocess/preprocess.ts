// The preprocess stage: file bytes in, one prepared tensor per ensemble input size out.
import type { IncomingFile, PreparedFrame, PreparedImage, PreprocessSpec } from '../types.js';
import { areaUm2, canonicalImage, flattenLevel, NDSB_CAMERA, type CameraProfile } from './camera.js';
import { decodeGray, type GrayImage } from './decode.js';
import { inputKey, organismArea, prepare } from './prepare.js';

export interface PreprocessOptions {
  maxPixels: number;
  /** One entry per distinct input (size + spec + channels, default 1) that the active ensemble needs; the frame keys each by inputKey. */
  inputs: { size: number; spec: PreprocessSpec; channels?: 1 | 3 }[];
  /** What the camera gives (config `camera:`); default bright-field gray, pixel size unknown. */
  camera?: CameraProfile;
}

/** Decode and prepare one frame. Throws PlankwatchError (an image reject code) for bad input. */
export async function preprocessFrame(file: IncomingFile, bytes: Buffer, options: PreprocessOptions): Promise<PreparedFrame> {
  const camera = options.camera ?? NDSB_CAMERA;
  const colour = options.inputs.some((i) => i.channels === 3);
  const decoded = await decodeGray(bytes, { maxPixels: options.maxPixels, flatten: flattenLevel(camera.polarity), colour });
  return preprocessDecoded(file, decoded, options);
}

/**
 * Prepare one frame whose pixels are already decoded: an ROI cut from a camera frame, handed over
 * in memory with the PNG it was written as (the same pixels decodeGray gives back from that PNG).
 */
export function preprocessDecoded(file: IncomingFile, decoded: GrayImage, options: PreprocessOptions): PreparedFrame {
  const camera = options.camera ?? NDSB_CAMERA;
  // Canonical (bright-field) form first, so that every member's preparation reads every camera alike.
  const { image, polarity, background } = canonicalImage(decoded, camera.polarity);
  const inputs = new Map<string, PreparedImage>();
  for (const input of options.inputs) inputs.set(inputKey(input.size, input.spec, input.channels), prepare(image, input.size, input.spec, input.channels));
  const area = organismArea(image, background);
  const um2 = areaUm2(area, camera.pixelSizeUm);
  return {
    file,
    width: image.width,
    height: image.height,
    area,
    ...(um2 !== undefined ? { areaUm2: um2 } : {}),
    polarity,
    format: image.format,
    inputs,
  };
}
