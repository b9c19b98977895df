import { useEffect, useMemo } from 'react';
import {
  pointKey,
  selectCheckpoints,
  selectGpuStatus,
  selectLearnDemo,
  selectLearnError,
  selectLearnMeasure,
  selectLearnPoints,
  selectLearnRun,
  selectLearnRuns,
  selectReferences,
  selectValidationSets,
  type LearnDemoInfo,
  type LearnPoint,
  type LearnRun,
} from '../../store/index.ts';
import { useStudio } from '../store.tsx';

/**
 * What Learn mode's charts read from the store: the demo's distributions, the reference
 * perplexities of the base and each fine-tune (the studio's references), and merges by
 * distribution weights (the learn slice), requested when a chart needs them.
 */

export type Ppl = Record<string, number | undefined>;

export interface LearnReady {
  ready: boolean;
  /** What is still loading, or what failed. */
  message: string;
  failed: boolean;
}

export function useLearnReady(): LearnReady {
  const demo = useStudio(selectLearnDemo);
  const error = useStudio(selectLearnError);
  const gpu = useStudio(selectGpuStatus);
  const checkpoints = useStudio(selectCheckpoints);
  const sets = useStudio(selectValidationSets);
  if (error) return { ready: false, failed: true, message: error.message };
  if (gpu === 'unavailable' || gpu === 'lost' || gpu === 'crashed') return { ready: false, failed: true, message: 'WebGPU is not available in this browser, so the lesson cannot measure anything.' };
  const failedCard = checkpoints.find((c) => c.status === 'failed');
  if (failedCard) return { ready: false, failed: true, message: `${failedCard.name}: ${failedCard.error?.message ?? 'could not be loaded'}` };
  if (!demo) return { ready: false, failed: false, message: 'Loading the demo models…' };
  if (gpu !== 'ready') return { ready: false, failed: false, message: 'Starting the GPU…' };
  const waiting = checkpoints.some((c) => c.status !== 'ready') || sets.some((v) => v.status !== 'ready') || Object.values(demo.vectors).length < demo.distributions.length;
  return waiting ? { ready: false, failed: false, message: 'Reading the demo models and texts…' } : { ready: true, failed: false, message: '' };
}

export function useDemo(): LearnDemoInfo | null {
  return useStudio(selectLearnDemo);
}

/** Perplexity of the base and of each fine-tune itself, by distribution (undefined until measured). */
export function useReferences(): { base: Ppl; tunes: Record<string, Ppl> } {
  const demo = useStudio(selectLearnDemo);
  const refs = useStudio(selectReferences);
  const checkpoints = useStudio(selectCheckpoints);
  return useMemo(() => {
    const base = checkpoints.find((c) => c.role === 'base');
    const row = (id: string | undefined): Ppl => Object.fromEntries((demo?.distributions ?? []).map((d) => [d.id, id ? refs[`${id}|${demo!.sets[d.id]}`] : undefined]));
    return { base: row(base?.id), tunes: Object.fromEntries((demo?.distributions ?? []).map((d) => [d.id, row(demo!.vectors[d.id])])) };
  }, [demo, refs, checkpoints]);
}

/** A merge measured by the engine (weights by distribution, absent = 0); requested once it is needed. */
export function usePoint(weights: Record<string, number> | null, ready: boolean): LearnPoint | undefined {
  const demo = useStudio(selectLearnDemo);
  const points = useStudio(selectLearnPoints);
  const measure = useStudio(selectLearnMeasure);
  const key = demo && weights ? pointKey(demo.distributions.map((d) => d.id), weights) : null;
  useEffect(() => {
    if (ready && key && weights) void measure(weights);
    // `key` stands for `weights`.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [ready, key, measure]);
  return key ? points[key] : undefined;
}

/** Run `key` over `points` (in order) once the lesson is ready; re-requesting a finished run reuses every measured merge. */
export function useRun(key: string | null, points: Record<string, number>[] | null, ready: boolean): LearnRun | undefined {
  const runs = useStudio(selectLearnRuns);
  const run = useStudio(selectLearnRun);
  const status = key ? runs[key]?.status : undefined;
  useEffect(() => {
    if (ready && key && points && status !== 'done' && status !== 'running') void run(key, points);
    // `key` names `points`.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [ready, key, run, status]);
  return key ? runs[key] : undefined;
}

/** The prompt of each distribution, as make-demo chose and sampled it (manifest.json); none: generation starts from the start token. */
export function promptsOf(demo: LearnDemoInfo): Record<string, string> {
  return Object.fromEntries(demo.manifest.distributions.map((d) => [d.id, d.prompt ?? '']));
}

/** "0, 0.5, 1" → [0, 0.5, 1]; `fallback` when absent or not numbers. */
export function parseValues(text: string | undefined, fallback: readonly number[]): number[] {
  if (!text) return [...fallback];
  const xs = text.split(',').map((x) => Number(x.trim()));
  return xs.length && xs.every(Number.isFinite) ? xs : [...fallback];
}

export function mean(xs: readonly (number | undefined)[]): number | undefined {
  return xs.length && xs.every((x) => x !== undefined) ? (xs as number[]).reduce((a, b) => a + b, 0) / xs.length : undefined;
}

/** 12.3456 → "12.35"; undefined → "…" (still measuring). */
export function fmt(x: number | undefined, digits = 2): string {
  return x === undefined || !Number.isFinite(x) ? '…' : x.toFixed(digits);
}

/** Relative change from `a` to `b` as "−12%" / "+3%". */
export function pct(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined) return '…';
  const r = (b / a - 1) * 100;
  return `${r < 0 ? '−' : '+'}${Math.abs(r).toFixed(Math.abs(r) < 10 ? 1 : 0)}%`;
}
