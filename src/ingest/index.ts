// The ingest stage's public surface.
export { Ingest } from './ingest.js';
export type { IngestHandlers, IngestOptions, IngestReject, IngestStats, KnownAnswer } from './ingest.js';
export { FileDisposer, moveFile } from './disposer.js';
export type { DisposeResult, DisposerOptions, FileRef, FinishOutcome, ProcessedAction } from './disposer.js';
export { hashFile, openRegular, readVerified } from './hash.js';
export { archivedName, ImageArchive, ingestRoots } from './image-archive.js';
export { imageDirsFromConfig, readFrameImage, type ImageDirs } from './frame-image.js';
export type { ImageArchiveOptions, ImageRoot, VerifiedImage } from './image-archive.js';
