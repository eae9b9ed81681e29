// Other cameras' images, made from the committed NDSB fixtures (a bright-field gray camera): the
// same organisms as a dark-field camera would give them (inverted: light on a dark background),
// in gray or tinted colour, written losslessly (PNG) so that a test can compare pixel for pixel.
import sharp from 'sharp';

/** The stand-in dark-field camera's illumination colour and background level per channel. */
export const TINT = [0.45, 0.85, 1.0] as const;
export const FLOOR = [4, 6, 10] as const;

async function grayOf(jpeg: Buffer): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(jpeg).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

/** A dark-field gray PNG: 255 - v of the NDSB image's gray channel. */
export async function darkFieldGray(jpeg: Buffer): Promise<Buffer> {
  const { data, width, height } = await grayOf(jpeg);
  const out = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) out[i] = 255 - data[i]!;
  return sharp(out, { raw: { width, height, channels: 1 } }).png().toBuffer();
}

/** A dark-field colour PNG: the inverted organism lit in TINT on a FLOOR background. */
export async function darkFieldColour(jpeg: Buffer): Promise<Buffer> {
  const { data, width, height } = await grayOf(jpeg);
  const out = Buffer.alloc(data.length * 3);
  for (let i = 0; i < data.length; i++) {
    const v = 255 - data[i]!;
    for (let c = 0; c < 3; c++) out[i * 3 + c] = Math.min(255, Math.round(FLOOR[c]! + TINT[c]! * v));
  }
  return sharp(out, { raw: { width, height, channels: 3 } }).png().toBuffer();
}
