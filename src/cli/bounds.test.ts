import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import {
  ConfigError,
  DemError,
  IncompatibleCheckpointError,
  InputError,
  openCheckpoint,
  readSafetensorsHeader,
  SafetensorsError,
  TokenizerError,
  Workspace,
  bytesSource,
  writeSafetensors,
  type Checkpoint,
  type MergeRecipe,
} from '../engine/index.ts';
import { folderFileSet } from '../node/files.ts';
import { testRuntime } from '../testing/gpu.ts';
import { runGenerate } from './generate.ts';
import { runInspect } from './inspect.ts';
import { reportError } from './main.ts';
import { runMerge } from './merge.ts';
import { runPpl } from './ppl.ts';
import { Progress } from './progress.ts';
import type { CommandEnv } from './session.ts';

/**
 * Bad input of a few bytes must end in a clear one-line typed error within seconds and a bounded
 * amount of memory, never a hang, a stack trace or silently wrong output (issue 12, findings
 * 7–13). Each case names what it checks; time bounds are measured and asserted.
 */
const FIX = resolve('e2e/fixtures');
const GPT2 = join(FIX, 'tiny-gpt2');
const FT_A = join(FIX, 'tiny-gpt2-ft-a');
const LLAMA = join(FIX, 'tiny-llama');
const PROSE = join(FIX, 'texts', 'prose.txt');

const tmp = mkdtempSync(join(tmpdir(), 'dem-bounds-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());
let n = 0;
const fresh = (name = 'x'): string => join(tmp, `${name}${n++}`);

/** A runtime that fails the test when the command starts GPU work. */
const noGpu: CommandEnv = {
  runtime: () => {
    throw new Error('the GPU was started for input that should have been refused first');
  },
  signal: new AbortController().signal,
};

/** A copy of `from` with config.json changed by `edit` (and other files by `files`). */
function variant(from: string, edit: (c: Record<string, unknown>) => void = () => {}, files: Record<string, string | Uint8Array> = {}): string {
  const dir = fresh('ckpt');
  cpSync(from, dir, { recursive: true });
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  edit(config);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
  return dir;
}

/** What a command prints (console.log/error) and the error it threw, if any. */
async function capture(run: () => Promise<number>): Promise<{ code: number; log: string[]; err: string[]; error: unknown }> {
  const log: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void log.push(a.map(String).join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.map(String).join(' ')));
  let error: unknown;
  const code = await run().catch((e: unknown) => {
    error = e;
    return reportError(e);
  });
  vi.restoreAllMocks();
  return { code, log, err, error };
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const t0 = performance.now();
  const value = await work();
  return { value, seconds: (performance.now() - t0) / 1000 };
}

/** GPT-2 fixture tensors with `edit` applied, as model.safetensors bytes. */
async function gpt2Weights(edit: (tensors: { name: string; dtype: string; shape: number[]; data: Uint8Array }[]) => void): Promise<Uint8Array> {
  const ckpt = await openCheckpoint(await folderFileSet(GPT2), 'tiny-gpt2');
  const tensors = await Promise.all([...ckpt.tensors.values()].map(async (t) => ({ name: t.storedName, dtype: t.dtype as string, shape: t.shape, data: await ckpt.read(t.name) })));
  edit(tensors);
  return writeSafetensors(tensors as Parameters<typeof writeSafetensors>[0]);
}

describe('finding 7: a config.json claiming huge layer counts', () => {
  it('num_hidden_layers / n_layer of 1e5 and 1e9: dem inspect refuses in well under a second with a short line', async () => {
    const cases = [variant(LLAMA, (c) => (c.num_hidden_layers = 1e9)), variant(LLAMA, (c) => (c.num_hidden_layers = 1e5)), variant(GPT2, (c) => (c.n_layer = 1e9))];
    const lines: string[] = [];
    for (const dir of cases) {
      const { value, seconds } = await timed(() => capture(() => runInspect([dir])));
      expect(value.error, dir).toBeInstanceOf(IncompatibleCheckpointError);
      expect(value.err).toHaveLength(1);
      expect(value.err[0]!.length).toBeLessThan(400);
      expect(value.err[0]).toMatch(/config\.json: config\.json describes 1000000000|100000 layers .* need at least \d+ tensors; the weights hold \d+/);
      expect(seconds).toBeLessThan(2);
      lines.push(`${seconds.toFixed(3)} s`);
    }
    console.log(`finding 7: refused in ${lines.join(', ')}`);
  });

  it('a checkpoint a few layers short still lists the missing tensors by name', async () => {
    const dir = variant(LLAMA, (c) => (c.num_hidden_layers = 3));
    const { error } = await capture(() => runInspect([dir]));
    expect((error as Error).message).toMatch(/missing model\.layers\.2\.self_attn\.q_proj\.weight/);
  });
});

describe('finding 8: texts that are not regular files or are too large', () => {
  it('--text /dev/zero, a FIFO, a folder and a 65 MiB file are refused before any GPU work, in milliseconds', async () => {
    const fifo = fresh('fifo');
    execFileSync('mkfifo', [fifo]);
    const big = fresh('big.txt');
    writeFileSync(big, '');
    truncateSync(big, 65 * 2 ** 20); // sparse: no disk used
    const cases: [string, RegExp][] = [
      ['/dev/zero', /\/dev\/zero: is not a regular file/],
      [fifo, /is not a regular file/],
      [tmp, /is a folder, not a text file/],
      [big, /is 65\.0 MiB, more than the 64\.0 MiB a text may have here/],
    ];
    for (const [path, message] of cases) {
      const { value, seconds } = await timed(() => capture(() => runPpl(['--model', GPT2, '--text', path, '--quiet'], noGpu)));
      expect(value.error, path).toBeInstanceOf(InputError);
      expect(value.err[0]).toMatch(message);
      expect(seconds).toBeLessThan(2);
    }
    // --config reads through the same bounded reader.
    const { error } = await capture(() => runMerge(['--config', '/dev/zero', '--out', fresh()], noGpu));
    expect((error as Error).message).toMatch(/not a regular file/);
  });
});

describe('finding 9: tokenizer ids far beyond the vocabulary', () => {
  it('one vocab id of 1e9 (or 1e8, or an added token of 1e9) in tokenizer.json: TokenizerError before the GPU, in well under a second', async () => {
    const tok = JSON.parse(readFileSync(join(GPT2, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> }; added_tokens: { id: number }[] };
    const edits: ((t: typeof tok) => void)[] = [(t) => (t.model.vocab['Ġthe'] = 1e9), (t) => (t.model.vocab.a = 1e8), (t) => (t.added_tokens[0]!.id = 1e9), (t) => (t.model.vocab.b = -1)];
    for (const edit of edits) {
      const t = structuredClone(tok);
      edit(t);
      const dir = variant(GPT2, () => {}, { 'tokenizer.json': JSON.stringify(t) });
      const { value, seconds } = await timed(() => capture(() => runPpl(['--model', dir, '--text', PROSE, '--quiet'], noGpu)));
      expect(value.error).toBeInstanceOf(TokenizerError);
      expect(value.err[0]).toMatch(/tokenizer\.json: .*token id (1000000000|100000000|-1) is (far beyond the vocabulary \(300 entries\)|not a non-negative integer)/);
      expect(seconds).toBeLessThan(1);
    }
  });
});

describe('finding 10: huge headers and contexts', () => {
  it('a 100 MB header listing 1.7 M tensors is refused within seconds, before JSON.parse builds them', async () => {
    const entry = (i: number): string => `"${i.toString(36)}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`;
    const parts: string[] = [];
    for (let i = 0; i < 1_700_000; i++) parts.push(entry(i));
    const json = new TextEncoder().encode(`{${parts.join(',')}}`);
    const bytes = new Uint8Array(8 + json.byteLength);
    new DataView(bytes.buffer).setUint32(0, json.byteLength, true);
    bytes.set(json, 8);
    expect(json.byteLength).toBeGreaterThan(90e6);
    const before = process.memoryUsage().heapUsed;
    const { value, seconds } = await timed(() => readSafetensorsHeader(bytesSource(bytes, 'model.safetensors')).catch((e: unknown) => e));
    const grown = process.memoryUsage().heapUsed - before;
    expect(value).toBeInstanceOf(SafetensorsError);
    expect((value as Error).message).toMatch(/header lists more than 100000 tensors/);
    expect(seconds).toBeLessThan(5);
    console.log(`finding 10: 100 MB / 1.7 M-tensor header refused in ${seconds.toFixed(2)} s, heap +${(grown / 2 ** 20).toFixed(0)} MiB`);
  }, 60_000);

  it('--context 1e8 (and 1e9) on a short text sizes the GPU buffers to the text: the same perplexity as a context of the whole text, a small peak', async () => {
    const rt = await testRuntime();
    const ws = new Workspace({ runtime: async () => rt });
    await ws.open('m', 'tiny-llama', await folderFileSet(LLAMA));
    const { tokens } = await ws.addText('t', 'prose', readFileSync(PROSE, 'utf8').slice(0, 200), 'm');
    const recipe: MergeRecipe = { version: 1, method: 'task_arithmetic', base: 'm', models: [], parameters: {} };
    // The context of the whole text first (it also compiles the kernels), then 1e8.
    await ws.evaluate({ recipe, texts: ['t'], context: tokens });
    const { value: whole, seconds: wholeSeconds } = await timed(() => ws.evaluate({ recipe, texts: ['t'], context: tokens }));
    rt.resetPeak();
    const { value: huge, seconds } = await timed(() => ws.evaluate({ recipe, texts: ['t'], context: 1e8 }));
    const peak = rt.memory.peak;
    expect(huge.texts[0]!.nllMean).toBe(whole.texts[0]!.nllMean);
    expect(huge.texts[0]!.context).toBe(1e8);
    expect(peak).toBeLessThan(8 * 2 ** 20);
    // The cost of the text, not of the context: about the time of a context of the text's length.
    expect(seconds).toBeLessThan(3 * wholeSeconds + 2);
    await expect(ws.evaluate({ recipe, texts: ['t'], context: 1e9 })).resolves.toBeTruthy();
    console.log(`finding 10: --context 1e8 on ${tokens} tokens: ${seconds.toFixed(2)} s (context ${tokens}: ${wholeSeconds.toFixed(2)} s), GPU peak ${(peak / 2 ** 20).toFixed(2)} MiB`);
  });
});

describe('finding 11: one line, never a stack trace', () => {
  const yaml = (body: string): string => {
    const f = fresh('cfg.yml');
    writeFileSync(f, body);
    return f;
  };
  const cases: [string, () => Promise<number>, RegExp][] = [
    ['a YAML alias bomb', () => runMerge(['--config', yaml(['a: &a ["x","x","x","x","x","x","x","x","x"]', ...'bcdefg'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefg'[i]}`).join(',')}]`)].join('\n')), '--out', fresh()], noGpu), /aliases expand to more than 1000 nodes/],
    ['an undefined YAML alias', () => runMerge(['--config', yaml('merge_method: *nothing\n'), '--out', fresh()], noGpu), /not valid YAML: Unresolved alias/],
    ['a self-referencing YAML alias', () => runMerge(['--config', yaml(`merge_method: task_arithmetic\nbase_model: ${GPT2}\nmodels: &m [*m]\n`), '--out', fresh()], noGpu), /models\[0\]: an alias refers to a collection that contains it/],
    ['YAML nested 5000 deep (the library can abort the process there)', () => runMerge(['--config', yaml('['.repeat(5000) + ']'.repeat(5000)), '--out', fresh()], noGpu), /nested up to \d+ levels deep/],
    ['--context 1000000000 on GPT-2', () => runPpl(['--model', GPT2, '--text', PROSE, '--context', '1000000000', '--quiet'], noGpu), /context 1000000000 exceeds the model's 64 learned positions/],
    ['--context beyond 2^31', () => runPpl(['--model', LLAMA, '--text', PROSE, '--context', '1e10', '--quiet'], noGpu), /--context: '1e10' is more than 2147483647/],
  ];
  for (const [what, run, message] of cases) {
    it(what, async () => {
      const { value, seconds } = await timed(() => capture(run));
      expect(value.error).toBeInstanceOf(DemError);
      expect(value.code).toBe(1);
      expect(value.err).toHaveLength(1);
      expect(value.err[0]).toMatch(message);
      expect(value.err[0]).not.toMatch(/\n|\s+at\s/);
      expect(seconds).toBeLessThan(2);
    });
  }

  it('anything else (a bug) is one line too, the stack only with DEM_DEBUG=1', () => {
    const err: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.map(String).join(' ')));
    expect(reportError(new RangeError('Invalid typed array length: 800000000000\n    at ropeTable'))).toBe(1);
    expect(err).toEqual(['dem: internal error: RangeError: Invalid typed array length: 800000000000\\n    at ropeTable (DEM_DEBUG=1 prints the stack)']);
  });
});

// Control characters, as the CLI must never print them (C0 but \t and \n where lines are kept, DEL, C1, bidi override).
// eslint-disable-next-line no-control-regex
const CONTROL_IN_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202e]/;

describe('finding 12: terminal escapes from files are shown escaped', () => {
  const evil = 'score\u001b]0;pwned\u0007\u001b[2J\u009b31m\u202e';
  it('dem inspect escapes tensor names; progress lines escape them too', async () => {
    const weights = await gpt2Weights((t) => t.push({ name: evil, dtype: 'F32', shape: [1], data: new Uint8Array(4) }));
    const dir = variant(GPT2, () => {}, { 'model.safetensors': weights });
    const { code, log } = await capture(() => runInspect([dir]));
    expect(code).toBe(0);
    const out = log.join('\n');
    expect(out).toContain('score\\e]0;pwned\\x07\\e[2J\\x9b31m\\u202e');
    expect(out).not.toMatch(CONTROL_IN_LINES);
    let written = '';
    vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((written += String(s)), true));
    const p = new Progress('merge');
    p.update(1, 1, evil);
    p.done(`${evil} done`);
    vi.restoreAllMocks();
    expect(written).toContain('score\\e]0;pwned');
    expect(written).not.toMatch(CONTROL_IN_LINES);
  });

  it('a JSON parse error quoting crafted bytes and an error naming a crafted tensor print escaped, on one line', async () => {
    const dir = variant(GPT2);
    // V8's message quotes the start of the text it could not parse.
    writeFileSync(join(dir, 'config.json'), '\u001b]0;pwned\u0007\u001b[2J');
    const bad = await capture(() => runInspect([dir]));
    expect(bad.error).toBeInstanceOf(ConfigError);
    expect((bad.error as Error).message).toContain('\u001b');
    expect(bad.err).toHaveLength(1);
    expect(bad.err[0]).toContain('\\e]0;pwned\\x07');
    expect(bad.err[0]).not.toMatch(CONTROL);
    const header = new TextEncoder().encode(JSON.stringify({ [evil]: { dtype: 'Q8', shape: [1], data_offsets: [0, 4] } }));
    const file = new Uint8Array(8 + header.byteLength + 4);
    new DataView(file.buffer).setUint32(0, header.byteLength, true);
    file.set(header, 8);
    const dir2 = variant(GPT2, () => {}, { 'model.safetensors': file });
    const named = await capture(() => runInspect([dir2]));
    expect(named.error).toBeInstanceOf(SafetensorsError);
    expect((named.error as Error).message).toContain(evil);
    expect(named.err).toHaveLength(1);
    expect(named.err[0]).toMatch(/^dem: error: model\.safetensors, tensor 'score\\e\]0;pwned\\x07.*': unknown dtype/);
    expect(named.err[0]).not.toMatch(CONTROL);
  });
});

describe('finding 13: the smaller ones', () => {
  it('a base tensor named __proto__ is kept in a sharded export and its index', async () => {
    const weights = await gpt2Weights((t) => t.push({ name: '__proto__', dtype: 'F32', shape: [3], data: new Uint8Array(12).fill(1) }));
    const base = variant(GPT2, () => {}, { 'model.safetensors': weights });
    const out = fresh('out');
    expect(await runMerge(['--quiet', '--base', base, '--model', `${FT_A}:0.5`, '--max-shard-size', '20000', '--out', out], { runtime: () => testRuntime() })).toBe(0);
    const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    expect(Object.hasOwn(index.weight_map, '__proto__')).toBe(true);
    const merged: Checkpoint = await openCheckpoint(await folderFileSet(out), 'out');
    expect([...(await merged.read('__proto__'))]).toEqual([...new Uint8Array(12).fill(1)]);
  });

  it('an I32 weight where a float is expected is refused by name (inspect, merge), not copied through', async () => {
    const weights = await gpt2Weights((t) => (t.find((x) => x.name === 'transformer.h.0.ln_1.weight')!.dtype = 'I32'));
    const base = variant(GPT2, () => {}, { 'model.safetensors': weights });
    const out = fresh('out');
    const merged = await capture(() => runMerge(['--quiet', '--base', base, '--model', `${FT_A}:0.5`, '--out', out], noGpu));
    expect(merged.error).toBeInstanceOf(IncompatibleCheckpointError);
    expect(merged.err[0]).toMatch(/transformer\.h\.0\.ln_1\.weight: dtype I32 in model\.safetensors, a float weight \(F32, F16 or BF16\) is expected/);
  });

  it('--seed 1e20 and --max-shard-size -5 / 0 / 5XB are refused; units are read', async () => {
    const seed = await capture(() => runGenerate(['--model', GPT2, '--prompt', 'x', '--seed', '1e20', '--temperature', '1'], noGpu));
    expect(seed.err[0]).toMatch(/--seed: '1e20' is more than 4294967295/);
    for (const bad of ['-5', '0', '5XB']) {
      const r = await capture(() => runMerge(['--base', GPT2, '--model', FT_A, `--max-shard-size=${bad}`, '--out', fresh()], noGpu));
      expect(r.err[0], bad).toMatch(/--max-shard-size: '.*' is not a positive size/);
    }
    const out = fresh('out');
    expect(await runMerge(['--quiet', '--base', LLAMA, '--model', join(FIX, 'tiny-llama-ft-a'), '--max-shard-size', '20KB', '--out', out], { runtime: () => testRuntime() })).toBe(0);
    const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    expect(new Set(Object.values(index.weight_map)).size).toBeGreaterThan(2);
  });

  it('a prompt longer than the context fails before anything is printed', async () => {
    let printed = '';
    const long = 'lighthouse '.repeat(200);
    const r = await capture(() => runGenerate(['--model', GPT2, '--prompt', long, '--quiet'], { ...noGpu, out: (s) => (printed += s) }));
    expect(r.error).toBeInstanceOf(InputError);
    expect(r.err[0]).toMatch(/the prompt has \d+ tokens, more than the maximum context \(64\)/);
    expect(printed).toBe('');
  });

  it('a Hugging Face cache snapshot (every file a symlink into ../../blobs) opens; a link leaving the cache is refused by name', async () => {
    const repo = join(fresh('hub'), 'models--org--tiny-gpt2');
    const snapshot = join(repo, 'snapshots', '0123abcd');
    mkdirSync(join(repo, 'blobs'), { recursive: true });
    mkdirSync(snapshot, { recursive: true });
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) {
      cpSync(join(GPT2, f), join(repo, 'blobs', `blob-${f}`));
      symlinkSync(join('..', '..', 'blobs', `blob-${f}`), join(snapshot, f));
    }
    const { code, log } = await capture(() => runInspect([snapshot]));
    expect(code).toBe(0);
    expect(log.join('\n')).toMatch(/0123abcd: gpt2/);
    const outside = fresh('outside');
    cpSync(GPT2, outside, { recursive: true });
    rmSync(join(outside, 'tokenizer.json'));
    symlinkSync('/etc/passwd', join(outside, 'tokenizer.json'));
    const refused = await capture(() => runInspect([outside]));
    expect(refused.error).toBeInstanceOf(InputError);
    expect(refused.err[0]).toMatch(/tokenizer\.json: a symlink to \/etc\/passwd, outside the checkpoint folder/);
  });
});
