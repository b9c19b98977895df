import { comparisonTable, type ComparisonTable, type MeasuredModel } from '../engine/index.ts';
import { baseOf, fineTunes, mixingBaselines } from './recipe.ts';
import { perplexityChosen, readyTasks } from './tasks.ts';
import type { StudioState } from './types.ts';

/**
 * The studio's DEM-vs-mixing table (the engine's comparisonTable) from what the store measured:
 * reference perplexities and task scores of the base, the data-mixing baseline and each
 * fine-tune; the search row with the lowest validation perplexity as DEM's choice (the current
 * merge when nothing was searched yet); tokens trained as recorded per checkpoint.
 */
export type ComparisonSource = Pick<
  StudioState,
  'checkpoints' | 'validationSets' | 'taskFiles' | 'references' | 'taskReferences' | 'searchRows' | 'searchCoefIds' | 'trainedTokens' | 'perplexities' | 'taskScores'
>;

export function comparisonOf(s: ComparisonSource): ComparisonTable | null {
  const base = baseOf(s.checkpoints);
  const sets = s.validationSets.filter((v) => v.status === 'ready');
  if (!base || sets.length === 0) return null;
  const tasks = readyTasks(s);
  const taskOf = (setId: string) => tasks.find((t) => t.setId === setId);
  const name = (id: string): string => s.checkpoints.find((c) => c.id === id)?.name ?? '(removed)';
  const unmerged = (id: string): MeasuredModel => ({
    name: name(id),
    ppl: Object.fromEntries(sets.map((v) => [v.id, s.references[`${id}|${v.id}`]])),
    score: Object.fromEntries(sets.map((v) => [v.id, taskOf(v.id) && s.taskReferences[`${id}|${taskOf(v.id)!.id}`]])),
    tokens: s.trainedTokens[id],
  });
  const chosen = perplexityChosen(s.searchRows);
  const dem: MeasuredModel = chosen
    ? {
        name: `ω ${s.searchCoefIds.map((id, i) => `${name(id)} ${chosen.weights[i]!.toFixed(2)}`).join(', ')} (best of ${s.searchRows.length} searched by perplexity)`,
        ppl: chosen.ppls,
        score: chosen.scores ?? {},
      }
    : {
        name: 'the current merge (nothing searched yet)',
        ppl: s.perplexities,
        score: Object.fromEntries(sets.map((v) => [v.id, taskOf(v.id) && s.taskScores[taskOf(v.id)!.id]?.score])),
      };
  return comparisonTable({
    distributions: sets.map((v) => {
      const kind = taskOf(v.id)?.kind;
      return { id: v.id, name: v.name, metric: kind === 'choice' ? 'acc' : kind === 'generate' ? 'exact_match' : undefined };
    }),
    mixing: mixingBaselines(s.checkpoints).map((c) => unmerged(c.id))[0] ?? null,
    dem,
    fineTunes: fineTunes(s.checkpoints).map((c) => unmerged(c.id)),
    base: unmerged(base.id),
    searchPoints: chosen ? s.searchRows.length : 1,
    validationTokens: sets.every((v) => v.tokens !== null) ? sets.reduce((n, v) => n + v.tokens!, 0) : undefined,
  });
}
