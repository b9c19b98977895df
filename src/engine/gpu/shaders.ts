/**
 * WGSL sources by name ('merge/combine' for shaders/merge/combine.wgsl).
 * The engine never reads files: the page/Worker hands it Vite's eager glob of shaders/, Node
 * hands it the same files read from disk (loadShaderSources in src/node/gpu.ts), so both run
 * identical source.
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

/**
 * A shader name with module-scope constants replaced: 'model/attention@HS_MAX=64u' is
 * model/attention with `const HS_MAX: u32 = 64u;`. For sizes WGSL needs as const-expressions
 * (function-scope arrays), where an override constant cannot go. Each named constant must exist.
 */
export function specializedShader(sources: ShaderSources, name: string): string {
  const at = name.indexOf('@');
  if (at < 0) return resolveShader(sources, name);
  let code = resolveShader(sources, name.slice(0, at));
  for (const def of name.slice(at + 1).split(',')) {
    const [key, value] = def.split('=');
    const pattern = new RegExp(`^(\\s*const\\s+${key}\\s*:\\s*\\w+\\s*=\\s*)[^;]+;`, 'm');
    if (!key || value === undefined || !pattern.test(code)) throw new Error(`WGSL shader '${name}': no module constant '${key}' to set`);
    code = code.replace(pattern, `$1${value};`);
  }
  return code;
}
