import { useId } from 'react';
import type { ControlSpec } from './steps.ts';

/**
 * The one live control of a step. Every control writes a URL parameter (see steps.ts), so the
 * state it sets is in the address. Choices are native radio buttons and sliders: keyboard and
 * screen-reader friendly without extra work.
 */
export interface ControlProps {
  spec: ControlSpec;
  params: Record<string, string>;
  setParam: (name: string, value: string) => void;
  distributions: { id: string; title: string }[];
  /** Prompt text by distribution (generation step). */
  prompts: Record<string, string>;
  /** The search step has found a merge (the mixing step can compare it). */
  hasSearch: boolean;
}

function Choice({ legend, name, value, options, onChange }: { legend: string; name: string; value: string; options: { id: string; label: string; disabled?: boolean }[]; onChange: (v: string) => void }) {
  const id = useId();
  return (
    <fieldset className="learn-choice" data-testid="learn-control" data-kind={name}>
      <legend>{legend}</legend>
      {options.map((o) => (
        <label key={o.id} className="learn-choice__option" data-checked={o.id === value}>
          <input type="radio" name={`${id}-${name}`} value={o.id} checked={o.id === value} disabled={o.disabled} onChange={() => onChange(o.id)} />
          <span>{o.label}</span>
        </label>
      ))}
    </fieldset>
  );
}

function Slider({ label, value, min, max, step, onChange, name }: { label: string; value: number; min: number; max: number; step: number; onChange: (v: number) => void; name: string }) {
  const id = useId();
  return (
    <div className="learn-slider" data-testid="learn-control" data-kind={name}>
      <label htmlFor={id}>{label}</label>
      <input id={id} type="range" min={min} max={max} step={step} value={value} onChange={(e) => onChange(e.currentTarget.valueAsNumber)} data-testid="learn-slider" />
      <output htmlFor={id} className="num" data-testid="learn-slider-value">
        {value}
      </output>
    </div>
  );
}

export function StepControl({ spec, params, setParam, distributions, prompts, hasSearch }: ControlProps) {
  const dists = distributions.map((d) => ({ id: d.id, label: d.id }));
  switch (spec.kind) {
    case 'model':
      return <Choice legend={spec.label} name="model" value={params.model ?? 'base'} options={[{ id: 'base', label: 'the base' }, ...distributions.map((d) => ({ id: d.id, label: `${d.id} fine-tune` }))]} onChange={(v) => setParam('model', v)} />;
    case 'vector':
      return <Choice legend={spec.label} name="v" value={params.v ?? ''} options={distributions.map((d) => ({ id: d.id, label: d.id }))} onChange={(v) => setParam('v', v)} />;
    case 'weight':
      return <Slider label={spec.label} name="w" value={Number(params.w ?? 0)} min={spec.min} max={spec.max} step={spec.step} onChange={(v) => setParam('w', String(v))} />;
    case 'colour':
      return <Choice legend={spec.label} name="colour" value={params.colour ?? 'mean'} options={[{ id: 'mean', label: 'mean of the four' }, ...dists]} onChange={(v) => setParam('colour', v)} />;
    case 'budget':
      return <Slider label={spec.label} name="budget" value={Number(params.budget)} min={spec.min} max={spec.max} step={1} onChange={(v) => setParam('budget', String(v))} />;
    case 'dem':
      return (
        <Choice
          legend={spec.label}
          name="dem"
          value={params.dem ?? 'best'}
          options={[
            { id: 'best', label: 'the demo’s best grid merge' },
            { id: 'ones', label: 'every ω = 1' },
            { id: 'search', label: 'your search’s best', disabled: !hasSearch },
          ]}
          onChange={(v) => setParam('dem', v)}
        />
      );
    case 'prompt':
      return <Choice legend={spec.label} name="prompt" value={params.prompt ?? ''} options={distributions.map((d) => ({ id: d.id, label: `${d.id}: “${prompts[d.id] ?? ''}”` }))} onChange={(v) => setParam('prompt', v)} />;
  }
}
