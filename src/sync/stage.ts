// How the daemon wires sync from the config: store hooks that queue outbox rows inside the
// store's transactions, the label hook for the review stage, and the sender's options.
import type { Config } from '../config/config.js';
import { readSecret } from '../config/secret.js';
import { PlankwatchError } from '../errors.js';
import { imageDirsFromConfig } from '../ingest/index.js';
import type { Logger } from '../log.js';
import type { OutboxRepository, StoreOptions } from '../store/index.js';
import { enqueueClassified, enqueueLabel, enqueueReject, type LabelRecord } from './outbox.js';
import type { SyncSenderOptions } from './sender.js';
import { STATUS_KEY_MIN_CHARS } from './status.js';

/**
 * Store options that queue sync records in the same transactions as the results. Empty when sync
 * is off: nothing is queued then.
 */
export function syncStoreHooks(config: Config): Pick<StoreOptions, 'onRecordClassified' | 'onRecordReject'> {
  if (!config.sync.enabled) return {};
  const ctx = { instrument: config.instrument.id, windowMs: config.store.countsWindowS * 1000 };
  return {
    onRecordClassified: (outbox, stored) => enqueueClassified(outbox, ctx, stored),
    onRecordReject: (outbox, reject) => enqueueReject(outbox, ctx, reject),
  };
}

/**
 * The call the review stage makes INSIDE its transaction when a label state changes: with sync on
 * it queues the change for the shore in `outbox` (the same store, so the same transaction); with
 * sync off it does nothing.
 */
export function syncLabelHook(config: Config, outbox: OutboxRepository): (record: Omit<LabelRecord, 'instrument'>) => void {
  if (!config.sync.enabled) return () => undefined;
  const options = { thumbnails: config.sync.thumbnails };
  return (record) => enqueueLabel(outbox, { ...record, instrument: config.instrument.id }, options);
}

/** Sender options from the config, reading the password file. Throws PW_E_CONFIG_INVALID. */
export function syncSenderOptions(config: Config, outbox: OutboxRepository, logger: Logger): SyncSenderOptions {
  const s = config.sync;
  return {
    outbox,
    instrument: config.instrument.id,
    link: {
      url: s.url,
      clientId: s.clientId || `plankwatch-sync-${config.instrument.id}`,
      ...(s.username ? { username: s.username } : {}),
      ...(s.passwordFile ? { password: readSecret(s.passwordFile, 'sync.passwordFile') } : {}),
      ...(s.caFile ? { caFile: s.caFile } : {}),
      ...(s.certFile ? { certFile: s.certFile } : {}),
      ...(s.keyFile ? { keyFile: s.keyFile } : {}),
      keepaliveS: s.keepaliveS,
      sessionExpiryS: s.sessionExpiryS,
    },
    topicPrefix: s.topicPrefix,
    bytesPerSecond: s.bytesPerSecond,
    dailyBytes: s.dailyBytes,
    maxBatchBytes: s.maxBatchBytes,
    maxBatchRecords: s.maxBatchRecords,
    maxInFlight: s.maxInFlight,
    compression: s.compression,
    countsHoldMs: s.countsHoldS * 1000,
    maxDelayMs: s.maxDelayS * 1000,
    nav: { trackIntervalMs: s.trackIntervalS * 1000 },
    cameraFrames: {},
    resendAfterMs: s.resendAfterS * 1000,
    ackTimeoutMs: s.ackTimeoutS * 1000,
    thumbnails: s.thumbnails ? { size: s.thumbnailSize, imageDirs: imageDirsFromConfig(config.ingest) } : null,
    shoreKey: s.shoreKeyFile ? readStatusKey(s.shoreKeyFile, 'sync.shoreKeyFile') : null,
    logger,
  };
}

/**
 * The shared key of the shore status signature (sync.shoreKeyFile, shore.statusKeyFile): the file's
 * text without surrounding white space, at least STATUS_KEY_MIN_CHARS long. Throws PW_E_CONFIG_INVALID.
 */
export function readStatusKey(file: string, key: string): string {
  const secret = readSecret(file, key);
  if (secret.length < STATUS_KEY_MIN_CHARS) {
    throw new PlankwatchError(
      'PW_E_CONFIG_INVALID',
      `${key}: the key in ${file} is ${secret.length} characters long; use at least ${STATUS_KEY_MIN_CHARS} (make one with: openssl rand -hex 32 > ${file}) and give the same file to the ships (sync.shoreKeyFile) and the shore ingesters (shore.statusKeyFile)`,
    );
  }
  return secret;
}
