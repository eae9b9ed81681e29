// The nav section's checks for `plankwatch config validate` and the start: everything the stage
// would refuse, each with its key, without opening any input.
import { isPlankwatchError } from '../errors.js';
import { silentLogger } from '../log.js';
import { filenameTimeReader } from './capture.js';
import { ctdFormat } from './ctd.js';
import { createInputs } from './inputs/index.js';
import type { NavConfig } from './nav-stage.js';

/** Problems of nav.* (none when nav.enabled is false). */
export function navConfigProblems(c: NavConfig): { key: string; detail: string }[] {
  if (!c.enabled) return [];
  const out: { key: string; detail: string }[] = [];
  const attempt = (key: string, fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      const detail = isPlankwatchError(err) ? err.detail : (err as Error).message;
      out.push({ key: /^nav\.[\w.]+/.exec(detail)?.[0] ?? key, detail });
    }
  };
  attempt('nav.ctd.pattern', () => ctdFormat(c.ctd.pattern, c.ctd.fields));
  attempt('nav.time.filenamePattern', () => filenameTimeReader(c.time.filenamePattern));
  attempt('nav.udp.ports', () => createInputs(c, { logger: silentLogger(), handlers: { line: () => undefined, overflow: () => undefined, state: () => undefined } }));
  if (c.volume.source === 'swept') {
    if (c.volume.fovWidthM <= 0) out.push({ key: 'nav.volume.fovWidthM', detail: 'must be above 0 with nav.volume.source "swept": the width of the imaged field, in metres' });
    if (c.volume.depthOfFieldM <= 0) out.push({ key: 'nav.volume.depthOfFieldM', detail: 'must be above 0 with nav.volume.source "swept": the depth of field, in metres' });
  }
  return out;
}
