import { IncompatibleCheckpointError } from '../errors.ts';
import type { ModelWeights } from '../io/roles.ts';
import type { ModelSpec } from '../io/spec.ts';

/**
 * Shared by the GPU forward, the float64 reference and the ONNX training graph (one math, three
 * executions): the combinations of spec and bound roles they implement: LayerNorm with a shift or
 * RMSNorm, GELU (tanh) on a plain MLP or SiLU on a gated one, learned positions iff the table
 * has pos_embed, RoPE with an even head size.
 */
export function checkForwardSupport<T>(spec: ModelSpec, w: ModelWeights<T>): void {
  const refuse = (message: string): never => {
    throw new IncompatibleCheckpointError(`${spec.modelType}: ${message}`);
  };
  if (spec.positions === 'learned' && w.posEmbed === undefined) refuse('learned positions need a pos_embed weight');
  if (spec.positions === 'rope' && w.posEmbed !== undefined) refuse('RoPE together with a learned pos_embed is not implemented');
  if (spec.positions === 'rope' && spec.headDim % 2 !== 0) refuse(`RoPE needs an even head size (got ${spec.headDim})`);
  for (const b of [...w.blocks.flatMap((l) => [l.norm1, l.norm2]), w.normF]) {
    if (spec.norm === 'layernorm' && b.b === undefined) refuse('LayerNorm without a bias is not implemented');
  }
  for (const l of w.blocks) {
    const gated = l.mlp.kind !== 'plain';
    if (gated !== (spec.activation === 'silu')) refuse(`activation '${spec.activation}' on a ${gated ? 'gated' : 'plain'} MLP is not implemented`);
  }
}
