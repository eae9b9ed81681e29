// The classify stage's public surface.
export { Classifier, type ClassifierOptions, type ClassifierStats, type ModelInfo } from './classifier.js';
export { loadEnsemble, readEnsembleFile, type LoadedEnsemble, type LoadedMember } from './ensemble-loader.js';
export { BACKEND_NAMES, backendCandidates, type BackendInfo, type BackendName, type BackendRequest } from './backend.js';
export { ONNX_FILE } from './onnx-export.js';
export { LocalRunner } from './runner.js';
export { hardVote, softVote, meanProbabilities } from './voting.js';
export { alignClasses } from './classes.js';
export type { EnsembleFile, MemberMeta, VotingRule } from './meta.js';
export { cameraMismatch, checkCamera, memberCamera, trainedCamera, MAX_PIXEL_SIZE_RATIO } from './camera-check.js';
