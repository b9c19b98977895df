import { useState, type KeyboardEvent } from 'react';

/**
 * A small SVG heat map (recharts has none): one rect per (x, y) cell on a viridis-like scale
 * (perceptually ordered, readable in grey and by most colour-blind viewers), a legend with the
 * value range, the minimum outlined. Every cell is a focusable button (Tab, Enter/Space) that
 * applies its coefficients when `onSelect` is given, and the same values are offered as a table.
 */
export interface HeatCell {
  x: number;
  y: number;
  value: number;
}

/** Viridis at nine evenly spaced stops (matplotlib's colormap data, sampled), interpolated linearly. */
const VIRIDIS: readonly [number, number, number][] = [
  [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141], [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
];

export function viridis(t: number): string {
  const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const a = VIRIDIS[i]!;
  const b = VIRIDIS[i + 1]!;
  return `rgb(${a.map((v, k) => Math.round(v + (b[k]! - v) * f)).join(',')})`;
}

export function Heatmap({
  xs,
  ys,
  cells,
  xLabel,
  yLabel,
  format,
  xTick,
  testId = 'heatmap-svg',
  onSelect,
}: {
  xs: readonly (number | string)[];
  ys: readonly (number | string)[];
  cells: readonly HeatCell[] | readonly { x: number | string; y: number | string; value: number }[];
  xLabel: string;
  yLabel: string;
  format: (v: number) => string;
  xTick?: (x: number | string) => string;
  testId?: string;
  /** Called with a cell's coordinates when it is clicked or activated with Enter/Space. */
  onSelect?: (x: number | string, y: number | string) => void;
}) {
  const [asTable, setAsTable] = useState(false);
  const cw = Math.max(28, Math.min(64, 420 / Math.max(1, xs.length)));
  const ch = Math.max(18, Math.min(40, 220 / Math.max(1, ys.length)));
  const left = 92;
  const top = 8;
  const values = cells.map((c) => c.value).filter(Number.isFinite);
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const width = left + cw * xs.length + 8;
  const height = top + ch * ys.length + 40;
  const legendW = 160;
  const key = (e: KeyboardEvent, x: number | string, y: number | string): void => {
    if (onSelect && (e.key === 'Enter' || e.key === ' ')) {
      e.preventDefault();
      onSelect(x, y);
    }
  };
  const label = (c: { x: number | string; y: number | string; value: number }): string => `${xLabel} ${String(c.x)}, ${yLabel} ${String(c.y)}: ${format(c.value)}${c.value === lo ? ' (lowest)' : ''}`;
  return (
    <div className="heat__wrap">
      <div className="row">
        <button type="button" className="button button--small button--quiet" aria-pressed={asTable} onClick={() => setAsTable((v) => !v)} data-testid={`${testId}-table-toggle`}>
          {asTable ? 'Show as heat map' : 'Show as table'}
        </button>
        {onSelect && <span className="small muted">Click a cell (or Tab to it and press Enter) to set both coefficients.</span>}
      </div>
      {asTable ? (
        <div className="table-scroll">
          <table className="table" data-testid={`${testId}-table`}>
            <caption className="small muted">{`${yLabel} (rows) by ${xLabel} (columns)`}</caption>
            <thead>
              <tr>
                <th scope="col">{yLabel}</th>
                {xs.map((x, i) => (
                  <th key={i} scope="col" className="num">
                    {xTick ? xTick(x) : String(x)}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {[...ys].reverse().map((y, j) => (
                <tr key={j}>
                  <th scope="row" className="num">
                    {String(y)}
                  </th>
                  {xs.map((x, i) => {
                    const c = cells.find((c) => c.x === x && c.y === y);
                    return (
                      <td key={i} className="num">
                        {c === undefined ? '' : onSelect ? (
                          <button type="button" className="sort" onClick={() => onSelect(x, y)} aria-label={label(c)}>
                            {format(c.value)}
                          </button>
                        ) : (
                          format(c.value)
                        )}
                      </td>
                    );
                  })}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
    <svg width={width + legendW} height={height} role="group" aria-label={`${yLabel} by ${xLabel}`} data-testid={testId} className="heat">
      {cells.map((c, k) => {
        const i = xs.indexOf(c.x as never);
        const j = ys.indexOf(c.y as never);
        if (i < 0 || j < 0) return null;
        const t = hi > lo ? (c.value - lo) / (hi - lo) : 0;
        return (
          <g
            key={k}
            role={onSelect ? 'button' : 'img'}
            tabIndex={0}
            aria-label={label(c)}
            className={onSelect ? 'heat__cell heat__cell--active' : 'heat__cell'}
            onClick={onSelect ? () => onSelect(c.x, c.y) : undefined}
            onKeyDown={(e) => key(e, c.x, c.y)}
            data-testid={`${testId}-cell`}
          >
            <rect x={left + i * cw} y={top + (ys.length - 1 - j) * ch} width={cw - 1} height={ch - 1} fill={viridis(t)} stroke={c.value === lo ? 'var(--text)' : 'none'} strokeWidth={2}>
              <title>{label(c)}</title>
            </rect>
          </g>
        );
      })}
      {ys.map((y, j) => (
        <text key={`y${j}`} x={left - 4} y={top + (ys.length - 1 - j) * ch + ch / 2 + 4} textAnchor="end" className="heat__tick">
          {String(y)}
        </text>
      ))}
      {xs.map((x, i) => (
        <text key={`x${i}`} x={left + i * cw + cw / 2} y={top + ys.length * ch + 14} textAnchor="middle" className="heat__tick">
          {xTick ? xTick(x) : String(x)}
        </text>
      ))}
      <text x={left + (cw * xs.length) / 2} y={height - 6} textAnchor="middle" className="heat__label">
        {xLabel}
      </text>
      <text x={4} y={top + 10} className="heat__label">
        {yLabel}
      </text>
      <defs>
        <linearGradient id={`${testId}-legend`} x1="0" x2="1" y1="0" y2="0">
          {VIRIDIS.map((_, i) => (
            <stop key={i} offset={i / (VIRIDIS.length - 1)} stopColor={viridis(i / (VIRIDIS.length - 1))} />
          ))}
        </linearGradient>
      </defs>
      <g data-testid={`${testId}-legend`} aria-hidden="true">
        <path d={`M${width + 8} ${top}h${legendW - 24}v12h${-(legendW - 24)}z`} fill={`url(#${testId}-legend)`} />
        <text x={width + 8} y={top + 26} className="heat__tick">
          {values.length ? format(lo) : ''}
        </text>
        <text x={width + legendW - 16} y={top + 26} textAnchor="end" className="heat__tick">
          {values.length ? format(hi) : ''}
        </text>
        <text x={width + 8} y={top + 42} className="heat__tick">
          low → high
        </text>
      </g>
    </svg>
      )}
    </div>
  );
}
