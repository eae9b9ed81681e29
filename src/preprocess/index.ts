// The preprocess stage's public surface: a frame's bytes to the inputs each member reads.
export { preprocessDecoded, preprocessFrame, type PreprocessOptions } from './preprocess.js';
export type { GrayImage } from './decode.js';
export { DEFAULT_PREPROCESS, inputKey, preparedBackground } from './prepare.js';
export { areaUm2, borderLevel, canonicalImage, describeProfile, detectPolarity, flattenLevel, NDSB_CAMERA, type CameraProfile, type Polarity } from './camera.js';
