// The segment stage's public surface: whole camera frames in, ROIs (with their place) out.
export { SegmentStage } from './stage.js';
export type { SegmentStageHooks, SegmentStageOptions } from './stage.js';
export { DEFAULT_SEGMENT_SETTINGS } from './settings.js';
export type { BackgroundMethod, Polarity, RoiGeometry, SegmentedFrame, SegmentSettings } from './settings.js';
export { decodeCameraFrame, type CameraFrameImage } from './camera-frame.js';
export { FrameSegmenter } from './frame-segmenter.js';
export { loadOpenCv, type Cv } from './opencv.js';
export { SegmentThread } from './segment-thread.js';
