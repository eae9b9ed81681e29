// The store stage's public surface.
export { Store } from './store.js';
export type { CountsSince, FrameRecord, RecordResult, RejectRecord, SourceOutcome, StoreOptions, StoreStatus, StoreTotals, WindowCounts } from './store.js';
export { MIGRATIONS, type Migration } from './migrations.js';
export { migrate, openDatabase, type SqliteDatabase } from './db.js';
export { PublishLog } from './publish-log.js';
