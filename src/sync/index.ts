// The sync stage's public surface (ship side).
export { enqueueClassified, enqueueLabel, enqueueReject, Outbox, type LabelRecord, type EnqueueLabelOptions, type OutboxStatus } from './outbox.js';
export { SyncSender, type SyncSenderOptions } from './sender.js';
export { syncLabelHook, syncSenderOptions, syncStoreHooks } from './stage.js';
export * from './records.js';
