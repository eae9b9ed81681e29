// The few ONNX protobuf messages an exported classifier needs (ModelProto, GraphProto, NodeProto,
// AttributeProto, TensorProto, ValueInfoProto), written by hand: field numbers from onnx/onnx.proto.
// Writing only; ONNX Runtime reads and checks the result.

/** TensorProto.DataType */
export const FLOAT = 1;
export const INT64 = 7;

export interface OnnxTensor {
  name: string;
  dims: number[];
  /** FLOAT data, or INT64 data given as numbers. */
  type: typeof FLOAT | typeof INT64;
  data: Float32Array | number[];
}

export type OnnxAttribute =
  | { name: string; f: number }
  | { name: string; i: number }
  | { name: string; s: string }
  | { name: string; ints: number[] };

export interface OnnxNode {
  opType: string;
  inputs: string[];
  outputs: string[];
  name: string;
  attributes?: OnnxAttribute[];
}

export interface OnnxValueInfo {
  name: string;
  elemType: typeof FLOAT | typeof INT64;
  /** A number is a fixed size; a string names a symbolic dimension (e.g. the batch). */
  shape: (number | string)[];
}

export interface OnnxModel {
  irVersion: number;
  opset: number;
  producerName: string;
  producerVersion: string;
  graphName: string;
  docString?: string;
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  /** ModelProto.metadata_props: key/value strings any ONNX reader can list. */
  metadata?: Record<string, string>;
}

/** Wire types of protobuf. */
/** Protobuf wire types (also read by onnx-graph.ts). */
export const VARINT = 0;
export const I64 = 1;
export const LEN = 2;
export const I32 = 5;

/** A growable byte buffer with the protobuf primitives. */
class Writer {
  private buf = new Uint8Array(256);
  private len = 0;

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  /** An unsigned varint; negative int64 values are written as their 10-byte two's complement. */
  varint(value: number): void {
    this.ensure(10);
    let v = BigInt.asUintN(64, BigInt(value));
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) byte |= 0x80;
      this.buf[this.len++] = byte;
    } while (v !== 0n);
  }

  tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  bytes(data: Uint8Array): void {
    this.ensure(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }

  // Fields.
  int(field: number, value: number): void {
    this.tag(field, VARINT);
    this.varint(value);
  }

  float(field: number, value: number): void {
    this.tag(field, I32);
    this.ensure(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 4).setFloat32(0, value, true);
    this.len += 4;
  }

  lengthDelimited(field: number, data: Uint8Array): void {
    this.tag(field, LEN);
    this.varint(data.length);
    this.bytes(data);
  }

  string(field: number, value: string): void {
    this.lengthDelimited(field, new TextEncoder().encode(value));
  }

  message(field: number, write: (w: Writer) => void): void {
    const inner = new Writer();
    write(inner);
    this.lengthDelimited(field, inner.finish());
  }

  /** A packed repeated int64 field. */
  packedInts(field: number, values: number[]): void {
    const inner = new Writer();
    for (const v of values) inner.varint(v);
    this.lengthDelimited(field, inner.finish());
  }
}

/** Serialise a model to the bytes of an .onnx file. */
export function encodeModel(model: OnnxModel): Uint8Array {
  const w = new Writer();
  w.int(1, model.irVersion); // ir_version
  w.string(2, model.producerName); // producer_name
  w.string(3, model.producerVersion); // producer_version
  if (model.docString) w.string(6, model.docString); // doc_string
  w.message(7, (g) => writeGraph(g, model)); // graph
  w.message(8, (o) => {
    // opset_import: the default domain
    o.string(1, '');
    o.int(2, model.opset);
  });
  for (const [key, value] of Object.entries(model.metadata ?? {})) {
    w.message(14, (e) => {
      e.string(1, key);
      e.string(2, value);
    });
  }
  return w.finish();
}

function writeGraph(g: Writer, model: OnnxModel): void {
  for (const node of model.nodes) g.message(1, (n) => writeNode(n, node));
  g.string(2, model.graphName);
  for (const t of model.initializers) g.message(5, (w) => writeTensor(w, t));
  for (const v of model.inputs) g.message(11, (w) => writeValueInfo(w, v));
  for (const v of model.outputs) g.message(12, (w) => writeValueInfo(w, v));
}

function writeNode(w: Writer, node: OnnxNode): void {
  for (const input of node.inputs) w.string(1, input);
  for (const output of node.outputs) w.string(2, output);
  w.string(3, node.name);
  w.string(4, node.opType);
  for (const a of node.attributes ?? []) w.message(5, (aw) => writeAttribute(aw, a));
}

/** AttributeProto.AttributeType */
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_STRING = 3;
const ATTR_INTS = 7;

function writeAttribute(w: Writer, a: OnnxAttribute): void {
  w.string(1, a.name);
  if ('f' in a) {
    w.float(2, a.f);
    w.int(20, ATTR_FLOAT);
  } else if ('i' in a) {
    w.int(3, a.i);
    w.int(20, ATTR_INT);
  } else if ('s' in a) {
    w.string(4, a.s);
    w.int(20, ATTR_STRING);
  } else {
    w.packedInts(8, a.ints);
    w.int(20, ATTR_INTS);
  }
}

function writeTensor(w: Writer, t: OnnxTensor): void {
  w.packedInts(1, t.dims);
  w.int(2, t.type);
  w.string(8, t.name);
  // raw_data: little-endian values
  if (t.type === FLOAT) {
    const data = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
    const bytes = new Uint8Array(data.length * 4);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i]!, true);
    w.lengthDelimited(9, bytes);
  } else {
    const bytes = new Uint8Array(t.data.length * 8);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < t.data.length; i++) view.setBigInt64(i * 8, BigInt(t.data[i]!), true);
    w.lengthDelimited(9, bytes);
  }
}

function writeValueInfo(w: Writer, v: OnnxValueInfo): void {
  w.string(1, v.name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, v.elemType);
      tensor.message(2, (shape) => {
        for (const d of v.shape) shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
      });
    }),
  );
}
