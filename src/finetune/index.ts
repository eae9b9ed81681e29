// The fine-tuning stage's public surface: the daemon part, its HTTP API and its run records.
export { Finetuner, referenceDataDir, replayDataDir, type FinetuneConfig, type FinetuneStatus, type FinetunerOptions } from './finetuner.js';
export { finetuneRoutes } from './routes.js';
export { FinetuneRuns, type FinetuneRun, type RunStatus, type RunTrigger } from './runs.js';
