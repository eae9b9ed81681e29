// Worker thread entry: OpenCV and one FrameSegmenter (with its background) per thread, so that
// reading, decoding and segmenting a camera frame never hold up ingest or classification on the
// main thread (nor load its heap with the frame's buffers).
import { parentPort } from 'node:worker_threads';
import { isPlankwatchError, PlankwatchError } from '../errors.js';
import { readVerified } from '../ingest/index.js';
import { decodeCameraFrame } from './camera-frame.js';
import { FrameSegmenter } from './frame-segmenter.js';
import { loadOpenCv, type Cv } from './opencv.js';
import type { SegmentReply, SegmentRequest } from './segment-protocol.js';

const port = parentPort;
if (!port) throw new PlankwatchError('PW_E_INTERNAL', 'segment-worker must run in a worker thread');

let segmenter: FrameSegmenter | undefined;
let cvModule: Cv | undefined;

port.on('message', (req: SegmentRequest) => {
  void handle(req).then(
    (reply) => port.postMessage(reply, reply.ok && reply.result ? reply.result.crops.map((c) => c.buffer as ArrayBuffer) : []),
    (err: unknown) => port.postMessage({ id: req.id, ok: false, message: describe(err), ...(isPlankwatchError(err) ? { code: err.code, detail: err.detail } : {}) } satisfies SegmentReply),
  );
});

async function handle(req: SegmentRequest): Promise<SegmentReply> {
  switch (req.op) {
    case 'configure': {
      const { cv } = await loadOpenCv();
      cvModule = cv;
      segmenter?.dispose();
      segmenter = new FrameSegmenter(cv, req.settings);
      return { id: req.id, ok: true };
    }
    case 'segment': {
      if (!segmenter) throw new PlankwatchError('PW_E_INTERNAL', 'segment before configure');
      return { id: req.id, ok: true, result: segmenter.segment(new Uint8Array(req.gray), req.width, req.height) };
    }
    case 'segmentFile': {
      if (!segmenter) throw new PlankwatchError('PW_E_INTERNAL', 'segment before configure');
      // Only the bytes that were hashed: never through a link, never from a FIFO.
      const bytes = await readVerified(req.path, req.sha256).catch((err: unknown) => {
        if (isPlankwatchError(err)) throw err;
        throw new PlankwatchError('PW_E_IMAGE_UNREADABLE', (err as Error).message, { cause: err });
      });
      const image = await decodeCameraFrame(bytes, req.maxPixels);
      return { id: req.id, ok: true, result: { ...segmenter.segment(image.gray, image.width, image.height), format: image.format } };
    }
  }
}

/** OpenCV throws C++ exceptions as numbers; its binding errors carry the whole module's source. */
function describe(err: unknown): string {
  if (typeof err === 'number' && cvModule) {
    try {
      return `OpenCV: ${(cvModule as unknown as { exceptionFromPtr(p: number): { msg: string } }).exceptionFromPtr(err).msg}`;
    } catch {
      return `OpenCV exception ${err}`;
    }
  }
  const message = err instanceof Error ? err.message : String(err);
  return message.length > 500 ? `${message.slice(0, 500)}…` : message;
}
