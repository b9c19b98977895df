/**
 * onnxruntime's on-device-training checkpoint ("ODTC" flatbuffer, version 2), written with the
 * flatbuffers runtime Builder. Layout per onnxruntime's ort_training_checkpoint.fbs / ort.fbs:
 *   Checkpoint{version:int32 (slot 0), module_state (1), optimizer_groups (2), property_bag (3)}
 *   ModuleState{requires_grad_params:[Tensor] (0), frozen_params:[Tensor] (1), is_nominal_state (2), has_external_data (3)}
 *   Tensor{name (0), doc_string (1), dims:[int64] (2), data_type:int32 (3), raw_data:[uint8] (4)}
 * Optimizer state is left out: the runtime creates zero moments.
 */
import { Builder } from 'flatbuffers';

export const CHECKPOINT_VERSION = 2;
const FLOAT = 1; // onnxruntime.fbs.TensorDataType.FLOAT

export interface StateTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

function tensorOffset(b: Builder, t: StateTensor): number {
  const raw = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  b.prep(16, raw.byteLength); // float data 16-byte aligned in the file
  const rawOff = b.createByteVector(raw);
  b.startVector(8, t.shape.length, 8);
  for (let i = t.shape.length - 1; i >= 0; i--) b.addInt64(BigInt(t.shape[i]!));
  const dimsOff = b.endVector();
  const nameOff = b.createString(t.name);
  b.startObject(7);
  b.addFieldOffset(0, nameOff, 0);
  b.addFieldOffset(2, dimsOff, 0);
  b.addFieldInt32(3, FLOAT, 0);
  b.addFieldOffset(4, rawOff, 0);
  return b.endObject();
}

function tensorVector(b: Builder, tensors: readonly StateTensor[]): number {
  const offs = tensors.map((t) => tensorOffset(b, t));
  return vectorOfOffsets(b, offs);
}

function vectorOfOffsets(b: Builder, offs: number[]): number {
  b.startVector(4, offs.length, 4);
  for (let i = offs.length - 1; i >= 0; i--) b.addOffset(offs[i]!);
  return b.endVector();
}

/** Checkpoint bytes holding `trainable` as requires_grad_params and `frozen` as frozen_params. */
export function writeCheckpointState(trainable: readonly StateTensor[], frozen: readonly StateTensor[]): Uint8Array {
  const bytes = [...trainable, ...frozen].reduce((n, t) => n + t.data.byteLength + t.name.length + 64, 1024);
  const b = new Builder(bytes);
  const req = tensorVector(b, trainable);
  const frz = tensorVector(b, frozen);
  b.startObject(4);
  b.addFieldOffset(0, req, 0);
  b.addFieldOffset(1, frz, 0);
  b.addFieldInt8(2, 0, 0);
  b.addFieldInt8(3, 0, 0);
  const moduleState = b.endObject();
  const groups = vectorOfOffsets(b, []);
  b.startObject(3);
  const propertyBag = b.endObject();
  b.startObject(4);
  b.addFieldInt32(0, CHECKPOINT_VERSION, 0);
  b.addFieldOffset(1, moduleState, 0);
  b.addFieldOffset(2, groups, 0);
  b.addFieldOffset(3, propertyBag, 0);
  const root = b.endObject();
  b.finish(root, 'ODTC');
  return b.asUint8Array().slice();
}
