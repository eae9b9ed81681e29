// Whether a member can serve the configured camera. Polarity never stops it (every image is
// brought to the canonical bright-field form before the member's preparation), nor colour for a
// gray member (a colour image is read as its luminance, as the member was trained). A member that
// reads R, G and B (input.channels 3) needs a colour camera: a gray one has no colour to give it.
// What cannot be undone either is scale: a member that keeps organisms at their size
// (preprocessing.noUpscale) learnt sizes in its training camera's pixels, so a camera whose pixels
// are much larger or smaller shows every organism at a size it never learnt.
import { PlankwatchError } from '../errors.js';
import type { CameraProfile } from '../preprocess/index.js';
import type { MemberCamera, MemberMeta } from './meta.js';

/** Largest ratio between the member's and the camera's pixel sizes a size-keeping member serves. */
export const MAX_PIXEL_SIZE_RATIO = 1.25;

/** Why `meta`'s member cannot serve `camera`, in words that say what to do; null when it can. */
export function cameraMismatch(meta: MemberMeta, camera: CameraProfile): string | null {
  if (meta.input.channels === 3 && camera.colour !== 'rgb') {
    return (
      `member ${meta.name}/${meta.version} reads colour (R, G and B: it was trained with --channels 3) but camera.colour is ${camera.colour}. ` +
      `Set camera.colour to rgb if the camera gives colour images, or take a gray member into the ensemble instead ` +
      `(plankwatch train --from <its gray parent> --channels 1 on this camera's images)`
    );
  }
  const trained = meta.camera?.pixelSizeUm ?? 0;
  const here = camera.pixelSizeUm;
  if (trained > 0 && here > 0 && meta.preprocessing.noUpscale) {
    const ratio = Math.max(trained, here) / Math.min(trained, here);
    if (ratio > MAX_PIXEL_SIZE_RATIO) {
      const how = here > trained ? 'smaller' : 'larger';
      return (
        `member ${meta.name}/${meta.version} was trained on ${trained} µm pixels and keeps organisms at their size, ` +
        `but camera.pixelSizeUm is ${here}: every organism would look ${ratio.toFixed(1)}× ${how} than it learnt. ` +
        `Set camera.pixelSizeUm to the camera's real pixel size if it is wrong, or train a version for this camera ` +
        `(plankwatch train --from ${meta.name}/${meta.version} folder --pixel-size ${here} on its images)`
      );
    }
  }
  return null;
}

/** Throw PW_E_CAMERA_PROFILE naming every member that cannot serve `camera`. */
export function checkCamera(members: readonly { meta: MemberMeta }[], camera: CameraProfile): void {
  const problems = members.map((m) => cameraMismatch(m.meta, camera)).filter((p): p is string => p !== null);
  if (problems.length > 0) throw new PlankwatchError('PW_E_CAMERA_PROFILE', problems.join('; '));
}

/** meta.json `camera` for a member trained on images of `camera` (with "auto": what was found). */
export function memberCamera(camera: CameraProfile, detected?: MemberCamera['detected']): MemberCamera {
  return { polarity: camera.polarity, colour: camera.colour, pixelSizeUm: camera.pixelSizeUm, ...(detected ? { detected } : {}), canonical: 'bright-field' };
}

/** The camera a member was trained on, as a profile (NDSB's when its meta.json records none). */
export function trainedCamera(meta: Pick<MemberMeta, 'camera'>): CameraProfile {
  const c = meta.camera;
  return c ? { polarity: c.polarity, colour: c.colour, pixelSizeUm: c.pixelSizeUm } : { polarity: 'bright-field', colour: 'gray', pixelSizeUm: 0 };
}
