// OpenCV compiled to WebAssembly (@techstark/opencv-js), loaded once per thread. The module's
// runtime starts asynchronously. The module object is itself a thenable (Emscripten's), so it is
// handed out wrapped: a promise resolved with it directly would never settle.
import { createRequire } from 'node:module';
import type * as CvModule from '@techstark/opencv-js';

export type Cv = typeof CvModule;

let loading: Promise<{ cv: Cv }> | undefined;

/** The OpenCV module of this thread (about 0.3 s and 10 MB the first time). */
export function loadOpenCv(): Promise<{ cv: Cv }> {
  loading ??= new Promise<{ cv: Cv }>((resolve, reject) => {
    try {
      const cv = createRequire(import.meta.url)('@techstark/opencv-js') as Cv & { onRuntimeInitialized?: () => void };
      if (typeof cv.Mat === 'function') resolve({ cv });
      else cv.onRuntimeInitialized = () => resolve({ cv });
    } catch (err) {
      reject(err instanceof Error ? err : new Error(String(err)));
    }
  });
  return loading;
}
