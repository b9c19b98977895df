import { useId, useState, type ChangeEvent } from 'react';
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { loraTargetNames, type TrainSettings, type TrainableSelection } from '../engine/index.ts';
import {
  DEFAULT_TRAIN_SETTINGS,
  selectCancelTraining,
  selectCheckpoints,
  selectStartTraining,
  selectTrainCurve,
  selectTrainError,
  selectTrainingZip,
  selectTrainProgress,
  selectTrainResult,
  selectTrainSnapshotStep,
  selectTrainStage,
  selectTrainStatus,
  selectTrainTokens,
} from '../store/index.ts';
import { useStudio } from './store.tsx';
import { download } from './download.ts';

const STAGE_TEXT: Record<string, string> = {
  loading: 'Reading the base…',
  tokenizing: 'Tokenizing the text…',
  building: 'Building the training graph…',
  training: 'Training…',
  writing: 'Writing the checkpoint…',
};

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '–';
  return s < 60 ? `${s.toFixed(0)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/** Fine-tunes the workspace base on a text in the training Worker; the result joins the workspace. */
export function TrainPanel() {
  const checkpoints = useStudio(selectCheckpoints);
  const base = checkpoints.find((c) => c.role === 'base' && c.status === 'ready');
  const status = useStudio(selectTrainStatus);
  const stage = useStudio(selectTrainStage);
  const tokens = useStudio(selectTrainTokens);
  const progress = useStudio(selectTrainProgress);
  const curve = useStudio(selectTrainCurve);
  const error = useStudio(selectTrainError);
  const snapshotStep = useStudio(selectTrainSnapshotStep);
  const result = useStudio(selectTrainResult);
  const start = useStudio(selectStartTraining);
  const cancel = useStudio(selectCancelTraining);
  const zip = useStudio(selectTrainingZip);

  const [name, setName] = useState('');
  const [text, setText] = useState('');
  const [settings, setSettings] = useState<TrainSettings>(DEFAULT_TRAIN_SETTINGS);
  const [which, setWhich] = useState<TrainableSelection['kind']>('all');
  const [lastK, setLastK] = useState(1);
  const [lora, setLora] = useState({ rank: 8, alpha: 16, rslora: false });
  // null: every module the base's family offers.
  const [loraTargets, setLoraTargets] = useState<string[] | null>(null);
  const ids = { name: useId(), text: useId() };
  const running = status === 'running';
  const targetNames = base?.summary ? loraTargetNames(base.summary.spec) : [];
  const chosenTargets = (loraTargets ?? targetNames).filter((t) => targetNames.includes(t));

  const num = (key: 'steps' | 'batchSize' | 'seqLen' | 'lr' | 'warmupSteps' | 'weightDecay' | 'snapshotEvery' | 'evalEvery', label: string, step = 1) => (
    <label className="train__field">
      <span>{label}</span>
      <input
        type="number"
        className="input input--num"
        step={step}
        min={0}
        value={settings[key]}
        disabled={running}
        data-testid={`train-${key}`}
        onChange={(e) => setSettings({ ...settings, [key]: Number(e.currentTarget.value) })}
      />
    </label>
  );

  const onFile = async (event: ChangeEvent<HTMLInputElement>): Promise<void> => {
    const input = event.currentTarget;
    const file = input.files?.[0];
    input.value = '';
    if (!file) return;
    setText(await file.text());
    if (!name) setName(file.name.replace(/\.[^.]+$/, ''));
  };

  const onStart = (): void => {
    const trainable: TrainableSelection =
      which === 'last-layers'
        ? { kind: 'last-layers', count: lastK }
        : which === 'lora'
          ? { kind: 'lora', rank: lora.rank, alpha: lora.alpha, targets: chosenTargets, ...(lora.rslora ? { rslora: true } : {}) }
          : { kind: which };
    start(name || (which === 'lora' && base ? `${base.name}-lora` : ''), text, { ...settings, trainable });
  };

  const pct = progress ? (100 * progress.step) / progress.totalSteps : 0;
  return (
    <section className="panel train" aria-labelledby="train-title" data-testid="train-panel" data-status={status}>
      <h2 id="train-title" className="section-title">
        Fine-tune <span className="muted">(the base{base ? ` “${base.name}”` : ''}, on this device)</span>
      </h2>
      <div className="set-form">
        <label htmlFor={ids.name}>Name</label>
        <input id={ids.name} className="input" value={name} disabled={running} onChange={(e) => setName(e.currentTarget.value)} placeholder="e.g. ft-legal" data-testid="train-name" />
        <label htmlFor={ids.text}>Training text</label>
        <textarea id={ids.text} className="input" rows={3} value={text} disabled={running} onChange={(e) => setText(e.currentTarget.value)} placeholder="Paste text of one distribution, or choose a .txt file" data-testid="train-text" />
        <span className="small muted num" data-testid="train-text-size">{`${text.length.toLocaleString('en-US')} characters (tokenized with the base's tokenizer)`}</span>
        <label className="button file-button">
          <input type="file" className="visually-hidden" accept=".txt,text/plain" disabled={running} onChange={(e) => void onFile(e)} data-testid="train-file" />
          Choose a .txt file…
        </label>
      </div>
      <div className="train__settings">
        {num('steps', 'Steps')}
        {num('batchSize', 'Batch')}
        {num('seqLen', 'Sequence length')}
        {num('lr', 'Learning rate', 0.0001)}
        {num('warmupSteps', 'Warm-up steps')}
        {num('weightDecay', 'Weight decay', 0.01)}
        {num('evalEvery', 'Held-out loss every')}
        {num('snapshotEvery', 'Snapshot every')}
        <label className="train__field">
          <span>Train</span>
          <select className="input" value={which} disabled={running} onChange={(e) => setWhich(e.currentTarget.value as TrainableSelection['kind'])} data-testid="train-trainable">
            <option value="all">all tensors</option>
            <option value="no-embeddings">all but embeddings</option>
            <option value="last-layers">last k layers</option>
            <option value="lora">LoRA adapter (base frozen)</option>
          </select>
        </label>
        {which === 'last-layers' && (
          <label className="train__field">
            <span>k</span>
            <input type="number" className="input input--num" min={1} value={lastK} disabled={running} onChange={(e) => setLastK(Number(e.currentTarget.value))} data-testid="train-last-k" />
          </label>
        )}
        {which === 'lora' && (
          <>
            <label className="train__field">
              <span>Rank r</span>
              <input type="number" className="input input--num" min={1} value={lora.rank} disabled={running} onChange={(e) => setLora({ ...lora, rank: Number(e.currentTarget.value) })} data-testid="train-lora-rank" />
            </label>
            <label className="train__field">
              <span>Alpha α</span>
              <input type="number" className="input input--num" min={0} step={1} value={lora.alpha} disabled={running} onChange={(e) => setLora({ ...lora, alpha: Number(e.currentTarget.value) })} data-testid="train-lora-alpha" />
            </label>
            <label className="train__field">
              <span title="scale α/√r instead of α/r">rsLoRA</span>
              <input type="checkbox" checked={lora.rslora} disabled={running} onChange={(e) => setLora({ ...lora, rslora: e.currentTarget.checked })} data-testid="train-lora-rslora" />
            </label>
          </>
        )}
      </div>
      {which === 'lora' && (
        <fieldset className="train__targets" disabled={running} data-testid="train-lora-targets">
          <legend className="small">LoRA on (PEFT module names; each adapted matrix W gets B (out, r) · A (r, in), scaled by α/r)</legend>
          {targetNames.map((t) => (
            <label key={t} className="small">
              <input
                type="checkbox"
                checked={chosenTargets.includes(t)}
                onChange={(e) => setLoraTargets(e.currentTarget.checked ? [...chosenTargets, t] : chosenTargets.filter((x) => x !== t))}
                data-testid={`train-lora-target-${t}`}
              />{' '}
              {t}
            </label>
          ))}
          {targetNames.length === 0 && <span className="small muted">Add a base checkpoint to see its modules.</span>}
        </fieldset>
      )}
      <div className="set-form__actions">
        <button type="button" className="button button--primary" disabled={running || !base} onClick={onStart} data-testid="train-start">
          Start training
        </button>
        <button type="button" className="button" disabled={!running} onClick={cancel} data-testid="train-cancel">
          Cancel
        </button>
        {result && (
          <button type="button" className="button" onClick={() => download(`${result.name}.zip`, zip()!)} data-testid="train-download">
            Download “{result.name}” (.zip)
          </button>
        )}
      </div>
      {!base && <p className="small muted">Add a base checkpoint to fine-tune it.</p>}
      {running && (
        <p className="small" data-testid="train-stage">
          {STAGE_TEXT[stage ?? ''] ?? ''}
          {tokens !== null ? ` ${tokens.toLocaleString('en-US')} tokens.` : ''}
          {snapshotStep !== null ? ` The workspace has the weights of step ${snapshotStep}.` : ''}
        </p>
      )}
      {progress && (
        <div className="train__progress">
          <progress max={progress.totalSteps} value={progress.step} data-testid="train-progress" data-step={progress.step} data-total={progress.totalSteps} aria-label="Training progress" />
          <span className="small num" data-testid="train-stats">
            {`step ${progress.step}/${progress.totalSteps} (${pct.toFixed(0)}%) · loss ${progress.loss.toFixed(3)}`}
            {progress.heldOutLoss !== undefined ? ` · held-out ${progress.heldOutLoss.toFixed(3)}` : ''}
            {` · ${Math.round(progress.tokensPerSecond).toLocaleString('en-US')} tokens/s · ETA ${formatSeconds(progress.etaSeconds)}`}
          </span>
        </div>
      )}
      {curve.length > 0 && (
        <div className="chart" data-testid="train-chart" data-points={curve.length}>
          <ResponsiveContainer width="100%" height={180}>
            <LineChart data={curve} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
              <CartesianGrid strokeDasharray="3 3" />
              <XAxis dataKey="step" type="number" domain={['dataMin', 'dataMax']} />
              <YAxis width={48} domain={['auto', 'auto']} tickFormatter={(x: number) => x.toFixed(1)} />
              <Tooltip formatter={(v) => (typeof v === 'number' ? v.toFixed(3) : String(v))} />
              <Legend />
              <Line type="monotone" dataKey="loss" name="train loss" stroke="#3b6fd8" dot={false} isAnimationActive={false} />
              <Line type="monotone" dataKey="heldOut" name="held-out loss" stroke="#d8743b" connectNulls isAnimationActive={false} />
            </LineChart>
          </ResponsiveContainer>
        </div>
      )}
      {status === 'done' && result && (
        <p className="small" role="status" data-testid="train-done">
          {`“${result.name}” joined the workspace as a ${result.files.some((f) => f.path === 'adapter_config.json') ? 'LoRA adapter' : 'fine-tune'} (${Math.round(result.tokensPerSecond).toLocaleString('en-US')} tokens/s).`}
        </p>
      )}
      {status === 'cancelled' && (
        <p className="small" role="status" data-testid="train-cancelled">
          Training was cancelled: nothing was added to the workspace.
        </p>
      )}
      {status === 'failed' && error && (
        <p className="set__error" role="alert" data-testid="train-error" data-code={error.code}>
          {error.message}
        </p>
      )}
    </section>
  );
}
