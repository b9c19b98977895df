import { useId, useState } from 'react';
import {
  selectAnalyzeLayers,
  selectCheckpoints,
  selectExportFiles,
  selectExportMerge,
  selectExportStatus,
  selectGeneratePreview,
  selectGeneration,
  selectGenerationStatus,
  selectLayers,
  selectLayersStatus,
  selectRecipeFiles,
} from '../store/index.ts';
import { Heatmap } from './Heatmap.tsx';
import { formatMs } from './format.ts';
import { useStudio } from './store.tsx';
import { download } from './download.ts';

/** DEM Figure 3: per layer, ‖θ_i − θ‖ of each fine-tune, normalised per model. */
export function LayersPanel() {
  const layers = useStudio(selectLayers);
  const status = useStudio(selectLayersStatus);
  const analyze = useStudio(selectAnalyzeLayers);
  const tunes = useStudio(selectCheckpoints).filter((c) => c.role === 'finetune' && c.status === 'ready' && !c.incompatible);
  const cells = layers ? layers.models.flatMap((m, i) => layers.groups.map((g, j) => ({ x: g, y: m, value: layers.normalised[i]![j]! }))) : [];
  return (
    <section className="panel" aria-labelledby="layers-title" data-testid="layers-panel" data-status={status}>
      <h2 id="layers-title" className="section-title">
        Where the fine-tunes moved
      </h2>
      <p className="muted small">Euclidean distance to the base over each layer's tensors, divided by the model's largest (the paper's Figure 3).</p>
      <button type="button" className="button button--small" disabled={tunes.length === 0 || status === 'running'} onClick={() => void analyze()} data-testid="layers-run">
        {status === 'running' ? 'Measuring…' : 'Measure layer distances'}
      </button>
      {layers && (
        <>
          <Heatmap
            xs={layers.groups}
            ys={[...layers.models].reverse()}
            cells={cells}
            xLabel="layer"
            yLabel=""
            xTick={(g) => String(g).replace('layer ', '').replace('embeddings', 'emb').replace('final', 'fin')}
            format={(v) => v.toFixed(3)}
            testId="layers-heat"
          />
          <table className="table small" data-testid="layers-table">
            <thead>
              <tr>
                <th scope="col">model</th>
                {layers.groups.map((g) => (
                  <th key={g} scope="col" className="num">
                    {g}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {layers.models.map((m, i) => (
                <tr key={m}>
                  <th scope="row">{m}</th>
                  {layers.distance[i]!.map((d, j) => (
                    <td key={j} className="num" title={`normalised ${layers.normalised[i]![j]!.toFixed(3)}`}>
                      {d.toPrecision(4)}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}

export function GeneratePanel() {
  const generate = useStudio(selectGeneratePreview);
  const result = useStudio(selectGeneration);
  const status = useStudio(selectGenerationStatus);
  const [prompt, setPrompt] = useState('The ');
  const [tokens, setTokens] = useState(24);
  const id = useId();
  return (
    <section className="panel" aria-labelledby="gen-title" data-testid="generate-panel">
      <h2 id="gen-title" className="section-title">
        Generation preview
      </h2>
      <div className="row">
        <label htmlFor={id} className="small">
          Prompt
        </label>
        <input id={id} className="input" value={prompt} onChange={(e) => setPrompt(e.currentTarget.value)} data-testid="gen-prompt" />
        <label className="small">
          tokens <input type="number" className="input input--tiny num" min={1} max={256} value={tokens} onChange={(e) => setTokens(e.currentTarget.valueAsNumber)} />
        </label>
        <button type="button" className="button button--small" disabled={status === 'running'} onClick={() => void generate(prompt, tokens)} data-testid="gen-run">
          Generate (greedy)
        </button>
      </div>
      <p className="generation mono" data-testid="gen-output" aria-live="polite">
        {result ? (
          <>
            <span className="muted">{prompt}</span>
            {result.text}
          </>
        ) : (
          <span className="muted">The current merge continues the prompt here.</span>
        )}
      </p>
      {result && <p className="small muted num">{`${result.tokens} tokens in ${formatMs(result.ms)}`}</p>}
    </section>
  );
}

type DirectoryPicker = (options?: { mode?: 'readwrite'; id?: string }) => Promise<FileSystemDirectoryHandle>;

/** The merged model as an HF folder (File System Access API) or a zip; the recipe as JSON / mergekit YAML. */
export function ExportPanel() {
  const exportMerge = useStudio(selectExportMerge);
  const status = useStudio(selectExportStatus);
  const files = useStudio(selectExportFiles);
  const recipeFiles = useStudio(selectRecipeFiles);
  const hasBase = useStudio(selectCheckpoints).some((c) => c.role === 'base' && c.status === 'ready');
  const picker = (window as unknown as { showDirectoryPicker?: DirectoryPicker }).showDirectoryPicker;
  const [recipeError, setRecipeError] = useState<string | null>(null);
  const recipe = (kind: 'json' | 'yaml'): void => {
    const r = recipeFiles();
    if ('error' in r) return setRecipeError(r.error);
    setRecipeError(null);
    if (kind === 'json') download('dem-recipe.json', r.json, 'application/json');
    else download('mergekit_config.yml', r.yaml, 'application/yaml');
  };
  const toFolder = async (): Promise<void> => {
    if (!picker) return;
    let dir: FileSystemDirectoryHandle;
    try {
      dir = await picker({ mode: 'readwrite', id: 'dem-export' });
    } catch {
      return; // The user closed the picker.
    }
    await exportMerge(dir);
  };
  const toZip = async (): Promise<void> => {
    const zip = await exportMerge('zip');
    if (zip) download('merged-model.zip', zip);
  };
  return (
    <section className="panel" aria-labelledby="export-title" data-testid="export-panel" data-status={status}>
      <h2 id="export-title" className="section-title">
        Export
      </h2>
      <div className="row">
        {picker && (
          <button type="button" className="button button--small button--primary" disabled={!hasBase || status === 'running'} onClick={() => void toFolder()} data-testid="export-folder">
            Save merged model to a folder…
          </button>
        )}
        <button type="button" className="button button--small" disabled={!hasBase || status === 'running'} onClick={() => void toZip()} data-testid="export-zip">
          Download merged model (.zip)
        </button>
        <button type="button" className="button button--small button--quiet" disabled={!hasBase} onClick={() => recipe('json')} data-testid="export-recipe">
          Recipe JSON
        </button>
        <button type="button" className="button button--small button--quiet" disabled={!hasBase} onClick={() => recipe('yaml')} data-testid="export-yaml">
          mergekit YAML
        </button>
      </div>
      {recipeError && (
        <p className="card__error" role="alert">
          {recipeError}
        </p>
      )}
      <p className="small muted" data-testid="export-status">
        {status === 'running' ? 'Merging and writing…' : status === 'done' ? `Wrote ${files.join(', ')}` : 'Merged exactly as `dem merge` does, tensor by tensor.'}
      </p>
    </section>
  );
}
