// The protobuf wire format, field by field: decode a message into its fields (unknown ones kept as
// they are) and encode fields back, so that a message can be edited without a schema. Used by
// onnx-graph.ts to edit an existing model.onnx.
import { I32, I64, LEN, VARINT } from './onnx-proto.js';

/** One protobuf field as read: varint values as bigint, fixed and length-delimited ones as bytes. */
export interface Field {
  field: number;
  wire: number;
  value: bigint | Uint8Array;
}

export function decode(bytes: Uint8Array): Field[] {
  const fields: Field[] = [];
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= bytes.length) throw new Error('truncated varint');
      const b = bytes[pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (pos < bytes.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    if (wire === VARINT) fields.push({ field, wire, value: varint() });
    else if (wire === I64 || wire === I32) {
      const n = wire === I64 ? 8 : 4;
      if (pos + n > bytes.length) throw new Error('truncated field');
      fields.push({ field, wire, value: bytes.subarray(pos, pos + n) });
      pos += n;
    } else if (wire === LEN) {
      const n = Number(varint());
      if (pos + n > bytes.length) throw new Error('truncated field');
      fields.push({ field, wire, value: bytes.subarray(pos, pos + n) });
      pos += n;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
  return fields;
}

export function varintBytes(value: bigint, out: number[]): void {
  let v = BigInt.asUintN(64, value);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
}

export function encode(fields: Field[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const f of fields) {
    const head: number[] = [];
    varintBytes(BigInt((f.field << 3) | f.wire), head);
    if (f.wire === VARINT) {
      varintBytes(f.value as bigint, head);
      parts.push(Uint8Array.from(head));
      total += head.length;
      continue;
    }
    const data = f.value as Uint8Array;
    if (f.wire === LEN) varintBytes(BigInt(data.length), head);
    parts.push(Uint8Array.from(head), data);
    total += head.length + data.length;
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export const text = (b: Uint8Array) => new TextDecoder().decode(b);
export const bytesOf = (s: string) => new TextEncoder().encode(s);
export const strings = (fields: Field[], n: number) => fields.filter((f) => f.field === n && f.wire === LEN).map((f) => text(f.value as Uint8Array));
export const first = (fields: Field[], n: number) => fields.find((f) => f.field === n);
export const str = (field: number, s: string): Field => ({ field, wire: LEN, value: bytesOf(s) });
export const int = (field: number, v: number): Field => ({ field, wire: VARINT, value: BigInt(v) });
export const msg = (field: number, fields: Field[]): Field => ({ field, wire: LEN, value: encode(fields) });

/** A repeated int64 field, packed or not. */
export function ints(fields: Field[], n: number): number[] {
  const out: number[] = [];
  for (const f of fields) {
    if (f.field !== n) continue;
    if (f.wire === VARINT) out.push(Number(BigInt.asIntN(64, f.value as bigint)));
    else if (f.wire === LEN) {
      for (const inner of decode(withKeys(f.value as Uint8Array))) out.push(Number(BigInt.asIntN(64, inner.value as bigint)));
    }
  }
  return out;
}

/** Packed varints as a message of field-1 varints, so that decode() reads them. */
export function withKeys(packed: Uint8Array): Uint8Array {
  const out: number[] = [];
  let start = 0;
  for (let i = 0; i < packed.length; i++) {
    if ((packed[i]! & 0x80) === 0) {
      out.push(0x08, ...packed.subarray(start, i + 1));
      start = i + 1;
    }
  }
  return Uint8Array.from(out);
}
