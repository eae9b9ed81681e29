// Worker thread entry: OpenCV and one FrameSegmenter (with its background) per thread, so that
// segmenting a camera frame never holds up ingest or classification on the main thread.
import { parentPort } from 'node:worker_threads';
import { PlankwatchError } from '../errors.js';
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
    (err: unknown) => port.postMessage({ id: req.id, ok: false, message: describe(err) } satisfies SegmentReply),
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
