import { Document } from 'yaml';
import type { FloatDTypeName } from '../io/dtypes.ts';
import { canonicalRecipe, type MergeRecipe } from './recipe.ts';
import { getMethod } from './registry.ts';
import { recipeToMergekitYaml } from './yaml.ts';

/**
 * The README.md model card written beside a merged checkpoint, in the shape mergekit gives its
 * outputs (Hub front matter with `base_model`, `library_name` and the `merge`/`mergekit` tags, then
 * the method, the models and the configuration), so the Hub files and searches it the same way.
 * Front matter's `base_model` lists only Hub ids (`org/name`): local folders mean nothing there.
 */
/** `baseDtype`: the base's stored dtype (the YAML's out_dtype when the recipe names none). */
export function modelCard(recipe: MergeRecipe, baseDtype: FloatDTypeName, title = 'Merged model'): string {
  const r = canonicalRecipe(recipe);
  const method = getMethod(r.method);
  const ids = [...new Set([r.base, ...r.models.map((m) => m.model)])];
  const hubIds = ids.filter((id) => /^[\w.-]+\/[\w.-]+$/.test(id));
  const front: Record<string, unknown> = {
    ...(hubIds.length ? { base_model: hubIds } : {}),
    library_name: 'transformers',
    tags: ['mergekit', 'merge', 'dem-studio'],
  };
  const frontText = new Document(front).toString({ lineWidth: 0, indentSeq: false });
  const code = (s: string): string => `\`${s}\``;
  const models = r.models.filter((m) => m.model !== r.base);
  const params = Object.entries(r.parameters).map(([k, v]) => `${code(k)}: ${code(JSON.stringify(v))}`);
  return [
    `---\n${frontText}---`,
    `# ${title}`,
    '',
    'A merge of pre-trained language models made with DEM Studio (its configuration also runs with [mergekit](https://github.com/arcee-ai/mergekit)).',
    '',
    '## Merge details',
    '',
    '### Method',
    '',
    `${method.label} (${code(r.method)}): ${method.description.replace(/\.?$/, '.')} Base model: ${code(r.base)}.` +
      (r.dtype ? ` Output dtype: ${code(r.dtype)}.` : ''),
    ...(params.length ? ['', `Parameters: ${params.join(', ')}.`] : []),
    '',
    '### Models merged',
    '',
    ...models.map((m) => `- ${code(m.model)}${Object.keys(m.parameters).length ? ` (${Object.entries(m.parameters).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(', ')})` : ''}`),
    '',
    '### Configuration',
    '',
    'The mergekit YAML of this merge (`mergekit_config.yml` beside the weights):',
    '',
    '```yaml',
    recipeToMergekitYaml(r, baseDtype).trimEnd(),
    '```',
    '',
  ].join('\n');
}
