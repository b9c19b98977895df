/** Fine-tuning with onnxruntime-web training: the surface the Worker, CLI and tests use. */
export {
  Trainer,
  fineTune,
  writeFineTuned,
  writeTrained,
  trainingParams,
  estimateTrainingMemory,
  resolveTrainable,
  loadParams,
  WASM_MEMORY_CAP,
  type FineTuneJob,
  type FineTuneResult,
  type MemoryEstimate,
  type OrtTrainingModule,
  type OrtTrainingSessionLike,
  type TrainProgress,
  type TrainSettings,
  type TrainableSelection,
} from './trainer.ts';
export { buildArtifacts, buildEvalModel, buildTrainingModel, buildOptimizerModel, buildGradientModel, learningRate, DEFAULT_ADAMW, type AdamWSettings, type TrainingArtifacts } from './artifacts.ts';
export { writeCheckpointState } from './checkpointState.ts';
export { loraTargetNames, loraFactors, loraParams, loraScale, initLoraFactors, writeLoraAdapter, type LoraFactor, type LoraSelection } from './lora.ts';
export { modelParams, appendForward, IGNORE_INDEX, type ParamInfo } from './model.ts';
export { planData, planBatches, batchTensors, type DataPlan } from './data.ts';
export { buildInferenceModel, NLL } from './onnx/inference.ts';
