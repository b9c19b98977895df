/**
 * Reference for merge/sparse: the float64 generalized task arithmetic of
 * src/engine/merge/reference.ts (ties, DARE, breadcrumbs share it with the method plug-ins).
 */
export { generalizedTaskArithmetic as sparseCombineRef, type GeneralizedOptions } from '../merge/reference.ts';
