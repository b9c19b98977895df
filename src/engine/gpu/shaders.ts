/**
 * WGSL sources by name ('merge/task_arithmetic' for shaders/merge/task_arithmetic.wgsl).
 * The engine never reads files: the page/Worker hands it Vite's eager glob of shaders/, Node
 * hands it the same files read from disk (src/node/shaders.ts), so both run identical source.
 *
 * Shared snippets are concatenated, not imported: a line `// @include common/dtype.wgsl`
 * is replaced by that file (once per shader, recursively).
 */
export type ShaderSources = Readonly<Record<string, string>>;

const INCLUDE = /^\s*\/\/\s*@include\s+(\S+)\s*$/gm;

/** Normalises keys like '/shaders/merge/x.wgsl' or 'merge/x.wgsl' to 'merge/x'. */
export function normaliseShaderSources(raw: Record<string, string>): ShaderSources {
  const out: Record<string, string> = {};
  for (const [key, src] of Object.entries(raw)) {
    const name = key.replace(/^.*?shaders\//, '').replace(/^\.?\//, '').replace(/\.wgsl$/, '');
    out[name] = src;
  }
  return out;
}

export function resolveShader(sources: ShaderSources, name: string): string {
  const seen = new Set<string>();
  const expand = (n: string): string => {
    const key = n.replace(/\.wgsl$/, '');
    const src = sources[key];
    if (src === undefined) throw new Error(`WGSL shader '${key}' not found (have: ${Object.keys(sources).sort().join(', ')})`);
    if (seen.has(key)) return `// (${key} already included)`;
    seen.add(key);
    return src.replace(INCLUDE, (_m, inc: string) => expand(inc));
  };
  return expand(name);
}
