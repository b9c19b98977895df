import { useId, useState } from 'react';
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { selectCheckpoints, selectHeatmap, selectSetCoefficient, selectJob, selectRunHeatmap, selectRunSweep, selectSweep, selectValidationSets, type CheckpointEntry } from '../store/index.ts';
import { Heatmap } from './Heatmap.tsx';
import { SERIES_COLORS } from './Perplexity.tsx';
import { useStudio } from './store.tsx';
import { TableDownloads } from './TableDownloads.tsx';
import { searchTable } from './tables.ts';

/** How perplexity responds to one coefficient (a curve per distribution) or to two (a heat map). */
export function ExplorePanel() {
  const tunes = useStudio(selectCheckpoints).filter((c) => c.role === 'finetune' && c.status === 'ready' && !c.incompatible);
  return (
    <section className="panel panel--wide" aria-labelledby="explore-title" data-testid="explore-panel">
      <h2 id="explore-title" className="section-title">
        Explore coefficients
      </h2>
      {tunes.length === 0 ? (
        <p className="muted">Add fine-tunes and a validation text to sweep their coefficients.</p>
      ) : (
        <div className="explore">
          <Sweep tunes={tunes} />
          <TwoD tunes={tunes} />
        </div>
      )}
    </section>
  );
}

function Range({ from, to, steps, set }: { from: number; to: number; steps: number; set: (p: { from?: number; to?: number; steps?: number }) => void }) {
  return (
    <>
      <label className="small">
        from <input type="number" className="input input--tiny num" step={0.1} value={from} onChange={(e) => set({ from: e.currentTarget.valueAsNumber })} />
      </label>
      <label className="small">
        to <input type="number" className="input input--tiny num" step={0.1} value={to} onChange={(e) => set({ to: e.currentTarget.valueAsNumber })} />
      </label>
      <label className="small">
        points <input type="number" className="input input--tiny num" min={2} max={41} value={steps} onChange={(e) => set({ steps: e.currentTarget.valueAsNumber })} />
      </label>
    </>
  );
}

function Sweep({ tunes }: { tunes: CheckpointEntry[] }) {
  const sweep = useStudio(selectSweep);
  const run = useStudio(selectRunSweep);
  const job = useStudio(selectJob);
  const sets = useStudio(selectValidationSets).filter((v) => v.status === 'ready');
  const [coef, setCoef] = useState('');
  const [range, setRange] = useState({ from: -0.5, to: 1.5, steps: 5 });
  const id = useId();
  const chosen = tunes.some((t) => t.id === coef) ? coef : (tunes[0]?.id ?? '');
  const busy = job?.status === 'running';
  const data = (sweep?.rows ?? []).map((r) => ({ x: r.weights[tunes.findIndex((t) => t.id === sweep?.coefId)] ?? 0, ...r.ppls, avg: r.objective }));
  return (
    <div className="explore__part" data-testid="sweep">
      <h3 className="subtitle">1-D sweep</h3>
      <div className="row">
        <label htmlFor={id} className="small">
          ω of
        </label>
        <select id={id} className="select" value={chosen} onChange={(e) => setCoef(e.currentTarget.value)} data-testid="sweep-coef">
          {tunes.map((t) => (
            <option key={t.id} value={t.id}>
              {t.name}
            </option>
          ))}
        </select>
        <Range {...range} set={(p) => setRange((r) => ({ ...r, ...p }))} />
        <button type="button" className="button button--small" disabled={busy} onClick={() => void run(chosen, range.from, range.to, range.steps)} data-testid="sweep-run">
          Sweep
        </button>
        {sweep && sweep.rows.length > 0 && <TableDownloads name="sweep" table={() => searchTable(sweep.rows, tunes.map((t) => t.name), sets)} testId="sweep-download" />}
      </div>
      <div className="chart" style={{ height: 220 }}>
        <ResponsiveContainer width="100%" height={220}>
          <LineChart data={data} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
            <CartesianGrid strokeDasharray="3 3" />
            <XAxis dataKey="x" type="number" domain={['dataMin', 'dataMax']} />
            <YAxis width={56} domain={['auto', 'auto']} tickFormatter={(x: number) => x.toFixed(1)} />
            <Tooltip formatter={(x) => (typeof x === 'number' ? x.toFixed(4) : String(x))} />
            <Legend />
            {sets.map((v, i) => (
              <Line key={v.id} dataKey={v.id} name={v.name} stroke={SERIES_COLORS[i % SERIES_COLORS.length]} dot isAnimationActive={false} />
            ))}
            <Line dataKey="avg" name="objective" stroke="#111" strokeDasharray="4 3" dot={false} isAnimationActive={false} />
          </LineChart>
        </ResponsiveContainer>
      </div>
    </div>
  );
}

function TwoD({ tunes }: { tunes: CheckpointEntry[] }) {
  const heat = useStudio(selectHeatmap);
  const setCoefficient = useStudio(selectSetCoefficient);
  const run = useStudio(selectRunHeatmap);
  const job = useStudio(selectJob);
  const [x, setX] = useState('');
  const [y, setY] = useState('');
  const [range, setRange] = useState({ from: 0, to: 1, steps: 4 });
  const xId = tunes.some((t) => t.id === x) ? x : (tunes[0]?.id ?? '');
  const yId = tunes.some((t) => t.id === y) && y !== xId ? y : (tunes.find((t) => t.id !== xId)?.id ?? '');
  const name = (id: string): string => tunes.find((t) => t.id === id)?.name ?? id;
  const busy = job?.status === 'running';
  if (tunes.length < 2) return <p className="muted small">A heat map needs two fine-tunes.</p>;
  const cells = heat
    ? heat.rows.map((r) => ({ x: r.weights[tunes.findIndex((t) => t.id === heat.xId)]!, y: r.weights[tunes.findIndex((t) => t.id === heat.yId)]!, value: r.objective }))
    : [];
  return (
    <div className="explore__part" data-testid="heatmap">
      <h3 className="subtitle">2-D heat map of the objective</h3>
      <div className="row">
        <select className="select" aria-label="Horizontal coefficient" value={xId} onChange={(e) => setX(e.currentTarget.value)}>
          {tunes.map((t) => (
            <option key={t.id} value={t.id}>
              x: {t.name}
            </option>
          ))}
        </select>
        <select className="select" aria-label="Vertical coefficient" value={yId} onChange={(e) => setY(e.currentTarget.value)}>
          {tunes.filter((t) => t.id !== xId).map((t) => (
            <option key={t.id} value={t.id}>
              y: {t.name}
            </option>
          ))}
        </select>
        <Range {...range} set={(p) => setRange((r) => ({ ...r, ...p }))} />
        <button type="button" className="button button--small" disabled={busy} onClick={() => void run(xId, yId, range.from, range.to, range.steps)} data-testid="heatmap-run">
          Map
        </button>
      </div>
      {heat && (
        <Heatmap
          xs={heat.xs}
          ys={heat.ys}
          cells={cells}
          xLabel={`ω ${name(heat.xId)}`}
          yLabel={`ω ${name(heat.yId)}`}
          format={(v) => v.toFixed(3)}
          onSelect={(x, y) => {
            setCoefficient(heat.xId, Number(x));
            setCoefficient(heat.yId, Number(y));
          }}
        />
      )}
    </div>
  );
}
