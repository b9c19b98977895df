import { IncompatibleCheckpointError } from '../errors.ts';
import type { ModelWeights } from '../io/roles.ts';
import type { ModelSpec } from '../io/spec.ts';

/**
 * Shared by the GPU forward, the float64 reference and the ONNX training graph (one math, three
 * executions): the combinations of spec and bound roles they implement: LayerNorm with a shift or
 * RMSNorm (Gemma's (1 + w) only as RMSNorm), pre- and/or post-norms per sub-block, q/k RMSNorm
 * per head or over the projection, GELU (tanh) on a plain or gated MLP or SiLU on a gated one,
 * learned positions iff the table has pos_embed, RoPE with an even head size.
 */
export function checkForwardSupport<T>(spec: ModelSpec, w: ModelWeights<T>): void {
  const refuse = (message: string): never => {
    throw new IncompatibleCheckpointError(`${spec.modelType}: ${message}`);
  };
  if (spec.positions === 'learned' && w.posEmbed === undefined) refuse('learned positions need a pos_embed weight');
  if (spec.positions === 'rope' && w.posEmbed !== undefined) refuse('RoPE together with a learned pos_embed is not implemented');
  if (spec.positions === 'rope' && spec.headDim % 2 !== 0) refuse(`RoPE needs an even head size (got ${spec.headDim})`);
  if (spec.positions === 'learned' && spec.ropeScaling !== undefined) refuse('rope scaling without RoPE');
  if (spec.normPlusOne && spec.norm !== 'rmsnorm') refuse('a (1 + w) norm scale is implemented for RMSNorm only');
  for (const b of [...w.blocks.flatMap((l) => [l.norm1, l.norm2, l.attnPostNorm, l.mlpPostNorm]), w.normF]) {
    if (b !== undefined && spec.norm === 'layernorm' && b.b === undefined) refuse('LayerNorm without a bias is not implemented');
  }
  for (const l of w.blocks) {
    if (l.mlp.kind === 'plain' && spec.activation !== 'gelu_new') refuse(`activation '${spec.activation}' on a plain MLP is not implemented`);
    if ((l.qNorm !== undefined) !== (spec.qkNorm !== undefined)) refuse(`q/k norm weights ${l.qNorm ? 'without' : 'missing for'} qkNorm in the spec`);
  }
  if (spec.slidingLayers !== undefined && spec.slidingLayers.length !== spec.numLayers) refuse(`slidingLayers lists ${spec.slidingLayers.length} of ${spec.numLayers} layers`);
}

/** The sliding window of block `layer` (0: full causal attention). */
export function layerWindow(spec: ModelSpec, layer: number): number {
  if (spec.slidingWindow === undefined) return 0;
  return (spec.slidingLayers?.[layer] ?? true) ? spec.slidingWindow : 0;
}

/** The attention score scale: the spec's (Gemma 2's query_pre_attn_scalar^-1/2) or 1/√HS. */
export function attentionScale(spec: ModelSpec): number {
  return spec.attnScale ?? 1 / Math.sqrt(spec.headDim);
}
