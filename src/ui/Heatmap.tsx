/**
 * A small SVG heat map (recharts has none): one rect per (x, y) cell, colour from low (light)
 * to high (dark), the minimum outlined. Values are in each cell's title for exact reading.
 */
export interface HeatCell {
  x: number;
  y: number;
  value: number;
}

function colour(t: number): string {
  // Light yellow → deep blue, perceptually ordered enough for a few dozen cells.
  const a = [255, 247, 188];
  const b = [37, 52, 148];
  const mix = a.map((v, i) => Math.round(v + (b[i]! - v) * t));
  return `rgb(${mix.join(',')})`;
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
}: {
  xs: readonly (number | string)[];
  ys: readonly (number | string)[];
  cells: readonly HeatCell[] | readonly { x: number | string; y: number | string; value: number }[];
  xLabel: string;
  yLabel: string;
  format: (v: number) => string;
  xTick?: (x: number | string) => string;
  testId?: string;
}) {
  const cw = Math.max(28, Math.min(64, 420 / Math.max(1, xs.length)));
  const ch = Math.max(18, Math.min(40, 220 / Math.max(1, ys.length)));
  const left = 92;
  const top = 8;
  const values = cells.map((c) => c.value).filter(Number.isFinite);
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const width = left + cw * xs.length + 8;
  const height = top + ch * ys.length + 40;
  return (
    <svg width={width} height={height} role="img" aria-label={`${yLabel} by ${xLabel}`} data-testid={testId} className="heat">
      {cells.map((c, k) => {
        const i = xs.indexOf(c.x as never);
        const j = ys.indexOf(c.y as never);
        if (i < 0 || j < 0) return null;
        const t = hi > lo ? (c.value - lo) / (hi - lo) : 0;
        return (
          <g key={k}>
            <rect x={left + i * cw} y={top + (ys.length - 1 - j) * ch} width={cw - 1} height={ch - 1} fill={colour(t)} stroke={c.value === lo ? '#111' : 'none'} strokeWidth={2}>
              <title>{`${xLabel} ${String(c.x)}, ${yLabel} ${String(c.y)}: ${format(c.value)}`}</title>
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
    </svg>
  );
}
