// A small self-describing tensor file (checkpoints, weight averages): one JSON header line naming
// each tensor's name, shape and dtype, then the raw values; written under a temporary name and
// renamed.
import { readFile, rename, writeFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs-core';

/** A small self-describing tensor file: JSON header line, then the raw values (the trainer's format). */
export async function writeTensors(file: string, tensors: tf.Tensor[], names: string[]): Promise<void> {
  const header = tensors.map((t, i) => ({ name: names[i], shape: t.shape, dtype: t.dtype }));
  const datas = tensors.map((t) => Buffer.from((t.dataSync() as Float32Array).slice().buffer));
  await writeFile(`${file}.tmp`, Buffer.concat([Buffer.from(JSON.stringify(header) + '\n'), ...datas]));
  await rename(`${file}.tmp`, file);
}

export async function readTensors(file: string): Promise<{ tensors: tf.Tensor[]; names: string[] }> {
  const buf = await readFile(file);
  const nl = buf.indexOf(10);
  const header = JSON.parse(buf.subarray(0, nl).toString('utf8')) as { name: string; shape: number[]; dtype: 'float32' | 'int32' }[];
  let offset = nl + 1;
  const tensors = header.map((h) => {
    const size = h.shape.reduce((a, b) => a * b, 1);
    const bytes = buf.buffer.slice(buf.byteOffset + offset, buf.byteOffset + offset + size * 4);
    offset += size * 4;
    return tf.tensor(h.dtype === 'int32' ? new Int32Array(bytes) : new Float32Array(bytes), h.shape, h.dtype);
  });
  return { tensors, names: header.map((h) => h.name) };
}
