// The review stage: people confirm, correct or doubt labels (page and JSON API); fine-tuning and
// sync read what they decided.
export { ReviewStore } from './review-store.js';
export { type ClassInfo, type FrameDetail, type LabelAction, type LabelListener, type LabelOutcome, type LabelRecord, type LabelRequest, type LabelStatus, type QueueFilter, type QueuePage, type ReviewItem, type ValidatedCounts, type ValidatedLabel } from './review-types.js';
export { reviewRoutes, type ReviewRoutesOptions } from './routes.js';
