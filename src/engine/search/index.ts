/** Coefficient search: the paper's grid and a budgeted optimiser, over any async objective. */
export { axisValues, gridPoints, type AxisSpec, type GridSpec } from './grid.ts';
export { nelderMead, type Evaluation, type NelderMeadOptions, type NelderMeadResult } from './nelderMead.ts';
export { weightedMean } from './objective.ts';
export { etaSeconds } from './eta.ts';
