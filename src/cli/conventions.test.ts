import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { parseMergekitYaml } from '../engine/index.ts';
import { parseCommandArgs } from './args.ts';
import { checkpointPath } from './mergeArgs.ts';
import { runMerge } from './merge.ts';
import { findInHubCache, hubCacheDir, looksLikeHubId } from '../node/hfCache.ts';

/**
 * The command-line habits of mergekit, argparse and huggingface_hub that `dem` follows: negative
 * numbers as option values, `dem merge CONFIG OUT`, `--out-shard-size`, hub ids from the local
 * cache, and the files mergekit writes beside a merge. Merges run on the tiny fixtures; their
 * numbers are checked by merge.test.ts, so here a form is held to the bytes of the form it
 * stands for.
 */
const FIX = resolve('e2e/fixtures');
const GPT2 = join(FIX, 'tiny-gpt2');
const GPT2_FT = ['a', 'b', 'c'].map((s) => join(FIX, `tiny-gpt2-ft-${s}`));
const QWEN3 = join(FIX, 'tiny-qwen3');
const QWEN3_FT = ['a', 'b'].map((s) => join(FIX, `tiny-qwen3-ft-${s}`));

const tmp = mkdtempSync(join(tmpdir(), 'dem-conventions-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(() => vi.unstubAllEnvs());
let n = 0;
const outDir = (): string => join(tmp, `out${n++}`);

const bytes = (dir: string, file = 'model.safetensors'): Buffer => readFileSync(join(dir, file));

/** Runs dem merge, capturing stderr; returns the exit code and what it printed. */
async function merge(...args: string[]): Promise<{ code: number; err: string }> {
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void lines.push(a.map(String).join(' ')));
  try {
    const code = await runMerge(['--quiet', ...args]);
    return { code, err: lines.join('\n') };
  } finally {
    spy.mockRestore();
  }
}

/**
 * A Hugging Face hub cache as huggingface_hub lays it out: refs/main holds the commit, the
 * snapshot's files are links into blobs/.
 */
function hubCache(entries: Record<string, string>): string {
  const cache = join(tmp, `hub${n++}`);
  for (const [id, folder] of Object.entries(entries)) {
    const repo = join(cache, `models--${id.split('/').join('--')}`);
    const commit = `${id.length.toString(16).padStart(2, '0')}${'0123456789abcdef'.repeat(3)}abcdef`.slice(0, 40);
    mkdirSync(join(repo, 'refs'), { recursive: true });
    writeFileSync(join(repo, 'refs', 'main'), commit);
    mkdirSync(join(repo, 'blobs'), { recursive: true });
    mkdirSync(join(repo, 'snapshots', commit), { recursive: true });
    for (const file of readdirSync(folder)) {
      const blob = join(repo, 'blobs', `${file}.blob`);
      cpSync(join(folder, file), blob);
      symlinkSync(join('..', '..', 'blobs', `${file}.blob`), join(repo, 'snapshots', commit, file));
    }
  }
  return cache;
}

describe('option values: negative numbers and aliases (parseCommandArgs)', () => {
  const options = { lambda: { type: 'string' }, quiet: { type: 'boolean' }, 'max-shard-size': { type: 'string' }, model: { type: 'string', multiple: true } } as const;
  it('reads `--lambda -0.5` as `--lambda=-0.5`, for every number form', () => {
    for (const v of ['-0.5', '-1', '-.5', '-1e-3', '-2.5E+2', '+3']) {
      expect(parseCommandArgs({ args: ['--lambda', v], options }).values.lambda, v).toBe(v);
      expect(parseCommandArgs({ args: [`--lambda=${v}`], options }).values.lambda, v).toBe(v);
    }
    expect(parseCommandArgs({ args: ['--model', 'a:-0.5', '--lambda', '-2', '--quiet'], options }).values).toEqual({ model: ['a:-0.5'], lambda: '-2', quiet: true });
  });
  it('still refuses a flag where a value belongs, and keeps `--` and positionals as they are', () => {
    expect(() => parseCommandArgs({ args: ['--lambda', '--quiet'], options })).toThrow(/ambiguous/);
    expect(() => parseCommandArgs({ args: ['--lambda', '-x'], options })).toThrow(/ambiguous/);
    expect(() => parseCommandArgs({ args: ['--quiet', '-0.5'], options })).toThrow(/Unknown option/);
    const r = parseCommandArgs({ args: ['--quiet', '--', '--lambda', '-1'], options, allowPositionals: true });
    expect(r.positionals).toEqual(['--lambda', '-1']);
  });
  it('renames aliases in both forms', () => {
    const aliases = { 'out-shard-size': 'max-shard-size' };
    expect(parseCommandArgs({ args: ['--out-shard-size', '40000'], options }, aliases).values['max-shard-size']).toBe('40000');
    expect(parseCommandArgs({ args: ['--out-shard-size=40000'], options }, aliases).values['max-shard-size']).toBe('40000');
  });
});

describe('dem merge: mergekit-style command lines', () => {
  it('`--lambda -0.5` (space form) writes the bytes `--lambda=-0.5` writes', async () => {
    const [a, b] = [outDir(), outDir()];
    const common = ['--base', GPT2, '--model', `${GPT2_FT[0]}:0.6`, '--model', GPT2_FT[1]!];
    expect((await merge(...common, '--lambda', '-0.5', '--out', a)).code).toBe(0);
    expect((await merge(...common, '--lambda=-0.5', '--out', b)).code).toBe(0);
    expect(bytes(a).equals(bytes(b))).toBe(true);
    expect(JSON.parse(readFileSync(join(a, 'dem-recipe.json'), 'utf8')).parameters.lambda).toBe(-0.5);
  });

  it('`dem merge CONFIG.yml OUT_DIR` and --out-shard-size equal --config/--out and --max-shard-size', async () => {
    const yml = join(tmp, 'positional.yml');
    writeFileSync(yml, `merge_method: task_arithmetic\nbase_model: ${GPT2}\nmodels:\n  - model: ${GPT2_FT[0]}\n    parameters: {weight: 0.7}\n  - model: ${GPT2_FT[2]}\n    parameters: {weight: -0.3}\n`);
    const [a, b, c, d] = [outDir(), outDir(), outDir(), outDir()];
    expect((await merge(yml, a)).code).toBe(0);
    expect((await merge('--config', yml, '--out', b)).code).toBe(0);
    expect(bytes(a).equals(bytes(b))).toBe(true);
    expect((await merge(yml, c, '--out-shard-size', '40000')).code).toBe(0);
    expect((await merge(yml, d, '--max-shard-size=40000')).code).toBe(0);
    const shards = readdirSync(c).filter((f) => f.endsWith('.safetensors')).sort();
    expect(shards.length).toBeGreaterThan(2);
    expect(readdirSync(d).filter((f) => f.endsWith('.safetensors')).sort()).toEqual(shards);
    for (const f of shards) expect(bytes(c, f).equals(bytes(d, f)), f).toBe(true);
  });

  it('refuses one positional, three, or positionals beside --config/--out (exit 2, saying the form)', async () => {
    const yml = join(tmp, 'positional.yml');
    for (const args of [[yml], [yml, outDir(), 'extra'], [yml, outDir(), '--config', yml], [yml, outDir(), '--out', outDir()]]) {
      const r = await merge(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toMatch(/positional arguments are CONFIG\.yml OUT_DIR \(both, instead of --config and --out\)/);
    }
  });
});

describe('hub ids from the local Hugging Face cache', () => {
  it('finds the cache as huggingface_hub does (HF_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME, ~/.cache)', () => {
    expect(hubCacheDir({ HF_HUB_CACHE: '/a', HF_HOME: '/b' })).toBe('/a');
    expect(hubCacheDir({ HF_HOME: '/b', XDG_CACHE_HOME: '/c' })).toBe('/b/hub');
    expect(hubCacheDir({ XDG_CACHE_HOME: '/c' })).toBe('/c/huggingface/hub');
    expect(hubCacheDir({})).toMatch(/\.cache\/huggingface\/hub$/);
    expect(['org/name', 'name', 'org/name@v1.0', 'org/Na.me-2_x'].every(looksLikeHubId)).toBe(true);
    expect(['./x', '../x', '/abs/x', 'a/b/c', 'a b'].some(looksLikeHubId)).toBe(false);
  });

  it('resolves refs/main, a named ref and a commit; a missing id is undefined', () => {
    const cache = hubCache({ 'org/tiny': GPT2 });
    const snapshot = findInHubCache('org/tiny', cache)!;
    expect(readFileSync(join(snapshot, 'config.json')).equals(readFileSync(join(GPT2, 'config.json')))).toBe(true);
    const commit = snapshot.split('/').pop()!;
    expect(findInHubCache(`org/tiny@${commit}`, cache)).toBe(snapshot);
    expect(findInHubCache('org/tiny@v2', cache)).toBeUndefined();
    expect(findInHubCache('org/other', cache)).toBeUndefined();
  });

  it('a hub id that is neither a folder nor cached is refused plainly, naming where it looked', () => {
    vi.stubEnv('HF_HUB_CACHE', join(tmp, 'empty-cache'));
    expect(() => checkpointPath('mistralai/Mistral-7B-v0.1')).toThrow(
      `'mistralai/Mistral-7B-v0.1' is not a folder (${resolve('mistralai/Mistral-7B-v0.1')}) and not in the local Hugging Face cache (looked in ${join(tmp, 'empty-cache')}; set HF_HUB_CACHE or HF_HOME to another cache)`,
    );
  });

  it("a YAML in the style of mergekit's examples (ties, hub ids, int8_mask, tokenizer_source: base) runs unchanged", async () => {
    const cache = hubCache({ 'example/tiny-gpt2': GPT2, 'example/tiny-gpt2-ft-a': GPT2_FT[0]!, 'example/tiny-gpt2-ft-b': GPT2_FT[1]!, 'other-org/tiny-gpt2-ft-c': GPT2_FT[2]! });
    const models = ['example/tiny-gpt2-ft-a', 'example/tiny-gpt2-ft-b', 'other-org/tiny-gpt2-ft-c'];
    const config = (ids: string[], base: string): string => `models:
  - model: ${ids[0]}
    parameters:
      density: [1, 0.7, 0.1] # density gradient
      weight: 1.0
  - model: ${ids[1]}
    parameters:
      density: 0.5
      weight: [0, 0.3, 0.7, 1] # weight gradient
  - model: ${ids[2]}
    parameters:
      density: 0.33
      weight:
        - filter: mlp
          value: 0.5
        - value: 0
merge_method: ties
base_model: ${base}
parameters:
  normalize: true
  int8_mask: true
dtype: float16
tokenizer_source: base
`;
    const hubYml = join(tmp, 'ties-hub.yml');
    const localYml = join(tmp, 'ties-local.yml');
    writeFileSync(hubYml, config(models, 'example/tiny-gpt2'));
    writeFileSync(localYml, config(GPT2_FT, GPT2));
    vi.stubEnv('HF_HUB_CACHE', cache);
    const [hub, local] = [outDir(), outDir()];
    expect((await merge(hubYml, hub)).code).toBe(0);
    expect((await merge(localYml, local)).code).toBe(0);
    expect(bytes(hub).equals(bytes(local))).toBe(true);
    // The exported YAML and the card keep the hub ids; the card's front matter is the Hub's.
    const exported = parseMergekitYaml(readFileSync(join(hub, 'mergekit_config.yml'), 'utf8'));
    expect([exported.base, ...exported.models.map((m) => m.model)]).toEqual(['example/tiny-gpt2', ...models]);
    const card = readFileSync(join(hub, 'README.md'), 'utf8');
    expect(card).toMatch(/^---\nbase_model:\n- example\/tiny-gpt2\n- example\/tiny-gpt2-ft-a\n- example\/tiny-gpt2-ft-b\n- other-org\/tiny-gpt2-ft-c\nlibrary_name: transformers\ntags:\n- mergekit\n- merge\n- dem-studio\n---\n/);
    expect(card).toContain('(`ties`)');
    expect(card).toContain('- `other-org/tiny-gpt2-ft-c` (weight: [{"filter":"mlp","value":0.5},{"value":0}], density: 0.33)');
    expect(card).toContain(readFileSync(join(hub, 'mergekit_config.yml'), 'utf8').trimEnd());
    // F16 output: config.json says so in the key the base uses.
    expect(JSON.parse(readFileSync(join(hub, 'config.json'), 'utf8')).torch_dtype).toBe('float16');
  });
});

describe('dem merge: what is written beside the weights', () => {
  it("mergekit_config.yml names local folders relative to itself, and reruns from there", async () => {
    const dir = outDir();
    expect((await merge('--base', GPT2, '--model', `${GPT2_FT[0]}:0.5`, '--model', `${GPT2_FT[1]}:-0.25`, '--out', dir)).code).toBe(0);
    const yaml = parseMergekitYaml(readFileSync(join(dir, 'mergekit_config.yml'), 'utf8'));
    for (const id of [yaml.base, ...yaml.models.map((m) => m.model)]) expect(id.startsWith('/'), id).toBe(false);
    expect([yaml.base, ...yaml.models.map((m) => m.model)].map((id) => resolve(dir, id))).toEqual([GPT2, GPT2_FT[0], GPT2_FT[1]]);
    // The recipe JSON records the command line as given.
    expect(JSON.parse(readFileSync(join(dir, 'dem-recipe.json'), 'utf8')).base).toBe(GPT2);
    const again = outDir();
    expect((await merge(join(dir, 'mergekit_config.yml'), again)).code).toBe(0);
    expect(bytes(again).equals(bytes(dir))).toBe(true);
    // Local folders are no Hub ids: the front matter has no base_model.
    expect(readFileSync(join(dir, 'README.md'), 'utf8')).toMatch(/^---\nlibrary_name: transformers\ntags:\n- mergekit\n- merge\n- dem-studio\n---\n/);
  });

  it("config.json keeps the base's dtype key (torch_dtype, dtype or both); chat_template.jinja comes from the base", async () => {
    const variants: Record<string, (c: Record<string, unknown>) => void> = {
      torch_dtype: () => {},
      dtype: (c) => {
        c.dtype = c.torch_dtype;
        delete c.torch_dtype;
      },
      both: (c) => {
        c.dtype = c.torch_dtype;
      },
    };
    const want: Record<string, string[]> = { torch_dtype: ['torch_dtype'], dtype: ['dtype'], both: ['torch_dtype', 'dtype'] };
    for (const [name, edit] of Object.entries(variants)) {
      const base = join(tmp, `qwen3-${name}`);
      cpSync(QWEN3, base, { recursive: true });
      const config = JSON.parse(readFileSync(join(QWEN3, 'config.json'), 'utf8')) as Record<string, unknown>;
      edit(config);
      writeFileSync(join(base, 'config.json'), JSON.stringify(config, null, 2));
      const dir = outDir();
      expect((await merge('--base', base, '--model', QWEN3_FT[0]!, '--model', `${QWEN3_FT[1]}:0.5`, '--dtype', 'f32', '--out', dir)).code).toBe(0);
      const out = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      expect(['torch_dtype', 'dtype'].filter((k) => k in out), name).toEqual(want[name]);
      for (const k of want[name]!) expect(out[k], `${name}.${k}`).toBe('float32');
      expect(bytes(dir, 'chat_template.jinja').equals(bytes(QWEN3, 'chat_template.jinja'))).toBe(true);
      expect(bytes(dir, 'tokenizer_config.json').equals(bytes(QWEN3, 'tokenizer_config.json'))).toBe(true);
    }
  });
});
