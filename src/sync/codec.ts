// Batch message bytes: JSON, compressed. The first byte says how: `{` plain JSON, 0x1f gzip
// (its own magic number), 0x01 followed by a brotli stream.
import { brotliCompressSync, brotliDecompressSync, constants, gunzipSync, gzipSync } from 'node:zlib';
import type { SyncBatch } from './records.js';
import { PlankwatchError } from '../errors.js';

export type Compression = 'brotli' | 'gzip' | 'none';

const BROTLI_MARK = 0x01;
/** Refuse to inflate a message beyond this (a corrupt or hostile message must not eat the shore's memory). */
const MAX_INFLATED = 64 * 1024 * 1024;

/** Compresses a batch's JSON text. Brotli at quality 9 with a text hint: the best ratio for JSON at this size. */
export function encodeBatch(json: string, compression: Compression): Buffer {
  const raw = Buffer.from(json, 'utf8');
  switch (compression) {
    case 'none':
      return raw;
    case 'gzip':
      return gzipSync(raw, { level: 9 });
    case 'brotli': {
      const body = brotliCompressSync(raw, {
        params: {
          [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
          [constants.BROTLI_PARAM_QUALITY]: 9,
          [constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
        },
      });
      return Buffer.concat([Buffer.from([BROTLI_MARK]), body]);
    }
  }
}

/** Inflates and parses a batch message. Throws on anything that is not a v1 batch. */
export function decodeBatch(message: Buffer): SyncBatch {
  if (message.length === 0) throw new PlankwatchError('PW_E_SHORE_BATCH', 'empty message');
  let text: string;
  const first = message[0];
  if (first === 0x7b) text = message.toString('utf8');
  else if (first === 0x1f) text = gunzipSync(message, { maxOutputLength: MAX_INFLATED }).toString('utf8');
  else if (first === BROTLI_MARK) text = brotliDecompressSync(message.subarray(1), { maxOutputLength: MAX_INFLATED }).toString('utf8');
  else throw new PlankwatchError('PW_E_SHORE_BATCH', `unknown batch encoding (first byte 0x${(first ?? 0).toString(16)})`);
  const batch = JSON.parse(text) as SyncBatch;
  if (batch === null || typeof batch !== 'object' || batch.v !== 1 || typeof batch.instrument !== 'string' || !Array.isArray(batch.records)) {
    throw new PlankwatchError('PW_E_SHORE_BATCH', 'not a plankwatch sync batch (v1)');
  }
  for (const r of batch.records) {
    if (!Number.isSafeInteger(r.seq) || r.seq <= 0 || typeof r.kind !== 'string' || typeof r.key !== 'string' || typeof r.data !== 'object' || r.data === null) {
      throw new PlankwatchError('PW_E_SHORE_BATCH', 'batch holds a malformed record');
    }
  }
  return batch;
}

/**
 * MQTT bytes of one PUBLISH at QoS 1: fixed header (1 + remaining-length bytes), topic (2 + length),
 * packet id (2), MQTT 5 properties length (1), payload. TCP/IP/TLS framing comes on top.
 */
export function publishWireBytes(topic: string, payloadBytes: number): number {
  const remaining = 2 + Buffer.byteLength(topic) + 2 + 1 + payloadBytes;
  const lengthBytes = remaining < 128 ? 1 : remaining < 16_384 ? 2 : remaining < 2_097_152 ? 3 : 4;
  return 1 + lengthBytes + remaining;
}
