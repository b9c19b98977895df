import { useId } from 'react';
import {
  COEF_MAX,
  COEF_MIN,
  coefficientOf,
  selectCheckpoints,
  selectCoefficients,
  selectMethod,
  selectMethods,
  selectParams,
  selectResetCoefficient,
  selectSetAnchor,
  selectSetAnchorCount,
  selectSetCoefficient,
  selectSetCoefficientMode,
  selectSetMethod,
  selectSetParam,
  type CheckpointEntry,
  type CoefficientState,
} from '../store/index.ts';
import type { ParamSpec } from '../engine/index.ts';
import { formatCoef } from './format.ts';
import { RecipeTools } from './RecipeTools.tsx';
import { useStudio } from './store.tsx';

/** The merge: method, its parameters, and one coefficient ω per fine-tune. */
export function CoefficientsPanel() {
  const checkpoints = useStudio(selectCheckpoints);
  const coefficients = useStudio(selectCoefficients);
  const tunes = checkpoints.filter((c) => c.role === 'finetune' && c.status === 'ready' && !c.incompatible);
  const method = useStudio(selectMethod);
  const methods = useStudio(selectMethods);
  const info = methods.find((m) => m.name === method);
  return (
    <section className="panel" aria-labelledby="coef-title" data-testid="coefficients-panel">
      <h2 id="coef-title" className="section-title">
        Merge
      </h2>
      <RecipeTools />
      <MethodPicker />
      {info && <p className="muted small">{info.description}</p>}
      {info?.usesWeights === false ? (
        <p className="muted small">{info.name} takes no per-model weights.</p>
      ) : tunes.length === 0 ? (
        <p className="muted">Add fine-tunes to get a coefficient each.</p>
      ) : (
        <div className="coefs">
          {tunes.map((t) => (
            <CoefficientRow key={t.id} tune={t} coef={coefficientOf(coefficients, t.id)} numLayers={t.summary?.spec.numLayers ?? 0} />
          ))}
        </div>
      )}
    </section>
  );
}

function MethodPicker() {
  const method = useStudio(selectMethod);
  const methods = useStudio(selectMethods);
  const setMethod = useStudio(selectSetMethod);
  const id = useId();
  const info = methods.find((m) => m.name === method);
  return (
    <div className="method">
      <label htmlFor={id}>Method</label>
      <select id={id} className="select" value={method} onChange={(e) => setMethod(e.currentTarget.value)} data-testid="method-picker">
        {methods.map((m) => (
          <option key={m.name} value={m.name}>
            {m.label}
          </option>
        ))}
      </select>
      {info?.params.map((p) => <ParamControl key={p.name} spec={p} />)}
    </div>
  );
}

function ParamControl({ spec }: { spec: ParamSpec }) {
  const params = useStudio(selectParams);
  const setParam = useStudio(selectSetParam);
  const id = useId();
  const value = params[spec.name] ?? spec.default ?? spec.initial;
  if (spec.type === 'boolean') {
    return (
      <label className="param param--check" title={spec.description}>
        <input type="checkbox" checked={value === true} onChange={(e) => setParam(spec.name, e.currentTarget.checked)} data-testid={`param-${spec.name}`} />
        {spec.label}
      </label>
    );
  }
  if (spec.type === 'choice') {
    return (
      <span className="param" title={spec.description}>
        <label htmlFor={id}>{spec.label}</label>
        <select id={id} className="select" value={String(value)} onChange={(e) => setParam(spec.name, e.currentTarget.value)} data-testid={`param-${spec.name}`}>
          {spec.choices?.map((c) => (
            <option key={c.value} value={c.value}>
              {c.label}
            </option>
          ))}
        </select>
      </span>
    );
  }
  const step = spec.type === 'integer' ? 1 : 0.01;
  return (
    <span className="param" title={spec.description}>
      <label htmlFor={id}>{spec.label}</label>
      <input
        id={id}
        type="number"
        className="input input--num num"
        value={Number(value)}
        step={step}
        min={spec.min}
        max={spec.max}
        onChange={(e) => {
          const v = e.currentTarget.valueAsNumber;
          if (Number.isFinite(v)) setParam(spec.name, v);
        }}
        data-testid={`param-${spec.name}`}
      />
    </span>
  );
}

function CoefficientRow({ tune, coef, numLayers }: { tune: CheckpointEntry; coef: CoefficientState; numLayers: number }) {
  const setValue = useStudio(selectSetCoefficient);
  const setMode = useStudio(selectSetCoefficientMode);
  const setAnchor = useStudio(selectSetAnchor);
  const setCount = useStudio(selectSetAnchorCount);
  const reset = useStudio(selectResetCoefficient);
  const id = useId();
  return (
    <div className="coef" data-testid="coefficient" data-name={tune.name}>
      <div className="coef__head">
        <span className="coef__name" id={`${id}-name`}>
          ω {tune.name}
        </span>
        <label className="param param--check small">
          <input type="checkbox" checked={coef.mode === 'layers'} onChange={(e) => setMode(tune.id, e.currentTarget.checked ? 'layers' : 'scalar')} data-testid="coefficient-layers" />
          per layer
        </label>
        <button type="button" className="button button--small button--quiet" onClick={() => reset(tune.id)} aria-label={`Reset ω of ${tune.name} to 1`} data-testid="coefficient-reset">
          Reset
        </button>
      </div>
      {coef.mode === 'scalar' ? (
        <Slider label={`ω ${tune.name}`} value={coef.value} onChange={(v) => setValue(tune.id, v)} testId="coefficient-slider" />
      ) : (
        <div className="anchors">
          <label className="small">
            anchors{' '}
            <input
              type="number"
              className="input input--tiny num"
              min={2}
              max={8}
              value={coef.anchors.length}
              onChange={(e) => setCount(tune.id, e.currentTarget.valueAsNumber)}
              aria-label={`Number of anchors for ${tune.name}`}
            />
          </label>
          {coef.anchors.map((a, i) => (
            <Slider
              key={i}
              label={`ω ${tune.name} at ${anchorLabel(i, coef.anchors.length, numLayers)}`}
              short={anchorLabel(i, coef.anchors.length, numLayers)}
              value={a}
              onChange={(v) => setAnchor(tune.id, i, v)}
              testId="anchor-slider"
            />
          ))}
        </div>
      )}
    </div>
  );
}

/** Where anchor i of n sits over depth (mergekit gradients spread anchors evenly over the layers). */
function anchorLabel(i: number, n: number, layers: number): string {
  if (layers <= 0) return `${i + 1}/${n}`;
  const at = (i / (n - 1)) * (layers - 1);
  return `layer ${Number.isInteger(at) ? at : at.toFixed(1)}`;
}

/** A range slider and a numeric field for one coefficient, both labelled, both keyboard-operable. */
function Slider({ label, short, value, onChange, testId }: { label: string; short?: string; value: number; onChange: (v: number) => void; testId: string }) {
  const id = useId();
  return (
    <div className="slider">
      {short && <span className="slider__short small muted">{short}</span>}
      <input
        id={id}
        type="range"
        min={COEF_MIN}
        max={COEF_MAX}
        step={0.01}
        value={value}
        aria-label={label}
        aria-valuetext={formatCoef(value)}
        onChange={(e) => onChange(e.currentTarget.valueAsNumber)}
        data-testid={testId}
      />
      <input
        type="number"
        className="input input--num num"
        min={COEF_MIN}
        max={COEF_MAX}
        step={0.01}
        value={value}
        aria-label={`${label} (number)`}
        onChange={(e) => {
          const v = e.currentTarget.valueAsNumber;
          if (Number.isFinite(v)) onChange(v);
        }}
        data-testid={`${testId}-number`}
      />
    </div>
  );
}
