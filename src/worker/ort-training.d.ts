// The aliased onnxruntime-web 1.19.2 ships its types as ambient `declare module 'onnxruntime-web/…'`
// blocks; the training Worker uses only the structural OrtTrainingModule slice of it.
declare module 'onnxruntime-web-training/training' {
  const ort: unknown;
  export = ort;
}
