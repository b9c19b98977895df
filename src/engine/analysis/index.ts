/** Understanding a merge: layer-wise distances between the base and each fine-tune. */
export { distanceGroup, distanceGroups, layerDistances, normalisePerModel, type LayerDistanceOptions, type LayerDistances } from './layerDistance.ts';
