// The navigation and environment stage's public surface.
export { NavStage, type NavConfig, type NavStageOptions, type NavStats, type StoredFrame } from './nav-stage.js';
export type { NavPublish } from './concentration-publisher.js';
export type { ConcentrationsPayload, PositionPayload, ProfilePayload } from './payloads.js';
export { depthFromPressure } from './depth.js';
export { interpolateLongitude, wrapLongitude } from './geo.js';
export { nmeaChecksum, withChecksum } from './nmea.js';
export { filenameTimeReader } from './capture.js';
export { LineSplitter } from './inputs/index.js';
export { navView, type NavView } from './view.js';
export { navConfigProblems } from './check.js';
