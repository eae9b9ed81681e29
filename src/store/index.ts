// The store stage's public surface. The SQLite connection stays inside this folder: the later
// stages get repositories (small typed interfaces over their own tables) from the Store.
export { Store } from './store.js';
export type { CountsSince, FrameRecord, RecordResult, RejectRecord, SourceOutcome, StoreOptions, StoreStatus, StoreTotals, WindowCounts } from './store.js';
export { windowStartOf } from './windows.js';
export { MIGRATIONS, type Migration } from './migrations.js';
export { migrate, openDatabase } from './db.js';
export type { PublishLog } from './publish-log.js';
export type { ReviewItemRow, LabelEventInsert, LabelEventRow, ReviewQueueQuery, ReviewRepository } from './review-repository.js';
export type { AckedBatch, OutboxProgressRow, OutboxRepository, OutboxRow, SyncPositionRow } from './outbox-repository.js';
export type { FinetuneRepository, FinetuneRunEnd, FinetuneRunRow } from './finetune-repository.js';
export { CAMERA_FRAME_VOLUME_SOURCE } from './camera-frame-repository.js';
export type { CameraFrameInsert, CameraFrameRepository, CameraFrameRoiInsert, CameraFrameRoiRow, CameraFrameRow, CameraFrameTotals, RoiPlace } from './camera-frame-repository.js';
export type { Bracket, ConcentrationRow, EnvField, EnvSampleInsert, NavFixInsert, NavRepository, RoiPosition, TaggedRoi, TagQuality, TimedValue, TimeSource, TrackPoint, VolumeInsert, VolumeRow } from './nav-repository.js';
