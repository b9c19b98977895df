import type { StudioState } from './types.ts';

/** One selector per field: components subscribe to exactly what they render. */
type Selector<K extends keyof StudioState> = (state: StudioState) => StudioState[K];
const field =
  <K extends keyof StudioState>(key: K): Selector<K> =>
  (state) =>
    state[key];

export const selectGpuStatus = field('gpuStatus');
export const selectAdapter = field('adapter');
export const selectGpuError = field('gpuError');
export const selectConnectGpu = field('connectGpu');

export const selectCheckpoints = field('checkpoints');
export const selectAddCheckpoint = field('addCheckpoint');
export const selectCancelCheckpoint = field('cancelCheckpoint');
export const selectRemoveCheckpoint = field('removeCheckpoint');
export const selectSetRole = field('setRole');
export const selectReplaceCheckpointFiles = field('replaceCheckpointFiles');

export const selectNotifications = field('notifications');
export const selectNotify = field('notify');
export const selectDismiss = field('dismiss');
export const selectReportError = field('reportError');

export const selectCompat = field('compat');
export const selectRefresh = field('refresh');
export const selectValidationSets = field('validationSets');
export const selectAddValidationText = field('addValidationText');
export const selectRemoveValidationText = field('removeValidationText');
export const selectMethods = field('methods');
export const selectMethod = field('method');
export const selectParams = field('params');
export const selectCoefficients = field('coefficients');
export const selectSetMethod = field('setMethod');
export const selectSetParam = field('setParam');
export const selectSetCoefficient = field('setCoefficient');
export const selectSetCoefficientMode = field('setCoefficientMode');
export const selectSetAnchor = field('setAnchor');
export const selectSetAnchorCount = field('setAnchorCount');
export const selectResetCoefficient = field('resetCoefficient');
export const selectCopyCoefficient = field('copyCoefficient');
export const selectPerplexities = field('perplexities');
export const selectEvalStatus = field('evalStatus');
export const selectEvalError = field('evalError');
export const selectEvalHint = field('evalHint');
export const selectTimings = field('timings');
export const selectReferences = field('references');
export const selectEvaluate = field('evaluate');
export const selectJob = field('job');
export const selectSweep = field('sweep');
export const selectHeatmap = field('heatmap');
export const selectSearchRows = field('searchRows');
export const selectSearchKind = field('searchKind');
export const selectSearchCoefIds = field('searchCoefIds');
export const selectObjectiveWeights = field('objectiveWeights');
export const selectSetObjectiveWeight = field('setObjectiveWeight');
export const selectRunSweep = field('runSweep');
export const selectRunHeatmap = field('runHeatmap');
export const selectRunGrid = field('runGrid');
export const selectRunOptimizer = field('runOptimizer');
export const selectCancelJob = field('cancelJob');
export const selectApplyRow = field('applyRow');
export const selectLayers = field('layers');
export const selectLayersStatus = field('layersStatus');
export const selectAnalyzeLayers = field('analyzeLayers');
export const selectGeneration = field('generation');
export const selectGenerationStatus = field('generationStatus');
export const selectGeneratePreview = field('generatePreview');
export const selectExportStatus = field('exportStatus');
export const selectExportFiles = field('exportFiles');
export const selectExportMerge = field('exportMerge');
export const selectRecipeFiles = field('recipeFiles');

export const selectTrainStatus = field('trainStatus');
export const selectTrainStage = field('trainStage');
export const selectTrainTokens = field('trainTokens');
export const selectTrainProgress = field('trainProgress');
export const selectTrainCurve = field('trainCurve');
export const selectTrainError = field('trainError');
export const selectTrainLiveId = field('trainLiveId');
export const selectTrainSnapshotStep = field('trainSnapshotStep');
export const selectTrainResult = field('trainResult');
export const selectStartTraining = field('startTraining');
export const selectCancelTraining = field('cancelTraining');
export const selectTrainingZip = field('trainingZip');

export const selectStorageEnabled = field('storageEnabled');
export const selectStorageUsage = field('storageUsage');
export const selectStoredItems = field('storedItems');
export const selectStorageCopying = field('storageCopying');
export const selectStorageNotStored = field('storageNotStored');
export const selectStorageMissing = field('storageMissing');
export const selectStorageSaving = field('storageSaving');
export const selectStorageError = field('storageError');
export const selectRefreshStorage = field('refreshStorage');
export const selectRemoveStored = field('removeStored');
export const selectClearStorage = field('clearStorage');

export const selectLearnDemo = field('learnDemo');
export const selectLearnError = field('learnError');
export const selectLearnPoints = field('learnPoints');
export const selectLearnEvaluations = field('learnEvaluations');
export const selectLearnRuns = field('learnRuns');
export const selectLearnMixing = field('learnMixing');
export const selectLearnGenerations = field('learnGenerations');
export const selectLearnMeasure = field('learnMeasure');
export const selectLearnRun = field('learnRun');
export const selectLearnOptimize = field('learnOptimize');
export const selectLearnLoadMixing = field('learnLoadMixing');
export const selectLearnGenerate = field('learnGenerate');
export const selectLearnCancel = field('learnCancel');
export const selectSearchTarget = field('searchTarget');
export const selectSetSearchTarget = field('setSearchTarget');
export const selectTaskFiles = field('taskFiles');
export const selectAddTaskFile = field('addTaskFile');
export const selectRemoveTaskFile = field('removeTaskFile');
export const selectTaskScores = field('taskScores');
export const selectTaskStatus = field('taskStatus');
export const selectTaskError = field('taskError');
export const selectTaskMs = field('taskMs');
export const selectTaskReferences = field('taskReferences');
export const selectTrainedTokens = field('trainedTokens');
export const selectSetTrainedTokens = field('setTrainedTokens');
export const selectComparisonStatus = field('comparisonStatus');
export const selectComparisonError = field('comparisonError');
export const selectMeasureComparison = field('measureComparison');
