// The model registry's public surface: member versions and ensembles on disk, promotion and
// rollback, and the watch on classify.ensemble.
export { ModelRegistry, type EnsembleVersion, type HistoryEntry, type MemberVersion, type PreparedStore, type RegistryListing, type RegistryOptions } from './registry.js';
export { EnsembleWatcher, type EnsembleWatcherOptions } from './watch.js';
