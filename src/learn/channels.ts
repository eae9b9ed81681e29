// A gray member made to read colour: the same network with an input of three channels (R, G, B),
// every layer's weights the parent's, and the first convolution's kernel repeated over the three
// channels and divided by three. On a gray image repeated into R, G and B it therefore computes
// what the parent computes on the gray image (to float rounding), and fine-tuning starts from the
// parent's behaviour, free to learn what colour adds.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

interface LayerJson {
  name: string;
  class_name: string;
  config: { batch_input_shape?: (number | null)[]; [key: string]: unknown };
  inbound_nodes: unknown[];
}

/**
 * `model` (one image input of `from` channels) as a new model reading `channels` channels. Only a
 * gray network (1 channel) can be widened, and only when its input feeds one convolution.
 */
export async function widenInput(model: tfl.LayersModel, channels: 3): Promise<tfl.LayersModel> {
  const topology = model.toJSON(null, false) as unknown as { class_name: string; config: { layers: LayerJson[]; input_layers: [string, number, number][] } };
  const layers = topology.config.layers;
  const inputName = topology.config.input_layers[0]?.[0];
  const input = layers.find((l) => l.name === inputName && l.class_name === 'InputLayer');
  const shape = input?.config.batch_input_shape;
  if (topology.config.input_layers.length !== 1 || !shape || shape.length !== 4) throw new Error(`${model.name}: only a network with one image input [batch, height, width, channels] can be given colour channels.`);
  if (shape[3] !== 1) throw new Error(`${model.name} reads ${shape[3]} channels: only a gray (1-channel) network can be given colour channels.`);
  const readers = layers.filter((l) => JSON.stringify(l.inbound_nodes).includes(JSON.stringify(inputName)));
  const first = readers.length === 1 && readers[0]!.class_name === 'Conv2D' ? readers[0]! : null;
  if (!first) throw new Error(`${model.name}: its input must feed one convolution to be given colour channels (it feeds ${readers.map((l) => `${l.name} (${l.class_name})`).join(', ') || 'nothing'}).`);
  input!.config.batch_input_shape = [shape[0]!, shape[1]!, shape[2]!, channels];
  const wide = await tfl.models.modelFromJSON({ modelTopology: topology as unknown as tf.io.ModelJSON['modelTopology'] });
  for (const layer of wide.layers) {
    const theirs = model.getLayer(layer.name).getWeights();
    if (theirs.length === 0) continue;
    if (layer.name !== first.name) {
      layer.setWeights(theirs);
      continue;
    }
    const spread = tf.tidy(() => [tf.div(tf.tile(theirs[0]!, [1, 1, channels, 1]), channels), ...theirs.slice(1).map((w) => w.clone())]);
    layer.setWeights(spread);
    tf.dispose(spread);
  }
  return wide;
}
