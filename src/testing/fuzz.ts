/**
 * The input fuzzer behind src/testing/fuzz.test.ts, run in a child process so a hang or a heap
 * blow-up is caught from outside (the parent kills it on a deadline; Node's --max-old-space-size
 * turns runaway allocation into a crash). Seeded: the same seed replays the same cases.
 *
 * Targets, each a valid fixture mutated by the PRNG plus handcrafted "bombs" (huge counts, ids,
 * nesting, sizes): safetensors headers, config.json, model.safetensors.index.json, tokenizer.json,
 * mergekit YAML and CLI argument lists. A case passes when it is accepted or refused with a
 * DemError (the CLI's argument parser's ERR_PARSE_ARGS too), within the per-case time bound,
 * and — for CLI cases — when what the CLI prints for it is one line without control characters.
 *
 * Usage: node --import tsx src/testing/fuzz.ts SEED BUDGET_MS PER_CASE_MS → one JSON report on stdout.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DemError, bytesSource, loadTokenizer, mulberry32, openCheckpoint, parseMergekitYaml, readSafetensorsHeader, type ByteSource, type FileSet } from '../engine/index.ts';
import { reportError } from '../cli/main.ts';
import { runGenerate } from '../cli/generate.ts';
import { runInspect } from '../cli/inspect.ts';
import { runMerge } from '../cli/merge.ts';
import { runPpl } from '../cli/ppl.ts';
import type { CommandEnv } from '../cli/session.ts';

export interface FuzzReport {
  seed: number;
  budgetMs: number;
  perCaseMs: number;
  targets: Record<string, { cases: number; accepted: number; refused: number; slowestMs: number; slowest: string }>;
  failures: string[];
  /** Peak resident set of the fuzzing process. */
  maxRssBytes: number;
  elapsedMs: number;
}

const FIX = resolve('e2e/fixtures');
type Rand = () => number;

const int = (r: Rand, n: number): number => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)]!;

/** Values that have broken parsers before: huge, negative, fractional, wrong types, special names. */
const NASTY: readonly unknown[] = [0, -1, 1, 2, 0.5, 1e5, 1e8, 1e9, 1e20, 1e39, 1e300, -1e300, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 'x', '', '1e9', null, true, [], {}, [1e9], { a: 1 }, '__proto__', '\u001b[2J\u001b]0;x\u0007'];
const NASTY_TEXT = ['1e9', '-1', '1e39', 'NaN', 'Infinity', '""', 'null', '[]', '{}', '\\u0000', '\u001b[31m', '&a', '*a', '!!binary', '%YAML 1.2', '? ', '- ', ': ', '#', '|', '>', '"', "'", '__proto__', '9'.repeat(400)];

function mutateJson(r: Rand, value: unknown, depth = 0): unknown {
  if (Array.isArray(value)) {
    const out = value.map((v) => (r() < 0.05 ? mutateJson(r, v, depth + 1) : v));
    if (r() < 0.05) out.push(pick(r, NASTY));
    if (r() < 0.05 && out.length) out.splice(int(r, out.length), 1);
    return out;
  }
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    const keys = Object.keys(out);
    const edits = depth === 0 ? 1 + int(r, 3) : r() < 0.1 ? 1 : 0;
    for (let e = 0; e < edits && keys.length; e++) {
      const k = pick(r, keys);
      const roll = r();
      if (roll < 0.5) out[k] = pick(r, NASTY);
      else if (roll < 0.7) delete out[k];
      else if (roll < 0.9) out[k] = mutateJson(r, out[k], depth + 1);
      else Object.defineProperty(out, pick(r, ['__proto__', 'constructor', `k${int(r, 9)}`]), { value: pick(r, NASTY), enumerable: true, configurable: true, writable: true });
    }
    return out;
  }
  return r() < 0.3 ? pick(r, NASTY) : value;
}

function mutateText(r: Rand, text: string): string {
  let t = text;
  const edits = 1 + int(r, 4);
  for (let e = 0; e < edits; e++) {
    const at = int(r, t.length + 1);
    const roll = r();
    if (roll < 0.4) t = t.slice(0, at) + pick(r, NASTY_TEXT) + t.slice(at);
    else if (roll < 0.6) t = t.slice(0, at) + t.slice(at + 1 + int(r, 20));
    else if (roll < 0.8) t = t.slice(0, at) + String.fromCharCode(int(r, 128)) + t.slice(at + 1);
    else t = t.slice(0, at);
  }
  return t;
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

function safetensorsBytes(json: string, data = 0): Uint8Array {
  const h = utf8(json);
  const out = new Uint8Array(8 + h.byteLength + data);
  new DataView(out.buffer).setUint32(0, h.byteLength, true);
  out.set(h, 8);
  return out;
}

/** The fixture folders as in-memory FileSets (no disk in the loop). */
function folder(name: string): Map<string, Uint8Array> {
  const dir = join(FIX, name);
  const out = new Map<string, Uint8Array>();
  for (const f of ['config.json', 'model.safetensors', 'model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'tokenizer.json']) {
    try {
      out.set(f, new Uint8Array(readFileSync(join(dir, f))));
    } catch {
      // not in this fixture
    }
  }
  return out;
}
const asFileSet = (files: Map<string, Uint8Array>): FileSet => new Map<string, ByteSource>([...files].map(([k, v]) => [k, bytesSource(v, k)]));

type Outcome = 'accepted' | 'refused';
interface Target {
  name: string;
  /** One case: its label and the work (resolves to the outcome, throws what the code under test threw). */
  next(r: Rand, i: number): { label: string; run: () => Promise<Outcome> };
}

/** A refusal that counts: a DemError (or the CLI parser's own argument error). */
function isTyped(error: unknown): boolean {
  return error instanceof DemError || (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'));
}

async function accept(work: () => Promise<unknown>): Promise<Outcome> {
  await work();
  return 'accepted';
}

function safetensorsTarget(): Target {
  const gpt2 = folder('tiny-gpt2').get('model.safetensors')!;
  const n = new DataView(gpt2.buffer, gpt2.byteOffset).getUint32(0, true);
  const header = new TextDecoder().decode(gpt2.subarray(8, 8 + n));
  const parsed = JSON.parse(header) as Record<string, unknown>;
  const bombs: ((r: Rand) => Uint8Array)[] = [
    (r) => safetensorsBytes(`{${Array.from({ length: 100_001 + int(r, 1000) }, (_, i) => `"t${i}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`).join(',')}}`),
    (r) => safetensorsBytes(`{"t":{"dtype":"F32","shape":[${Array(65 + int(r, 1e5)).fill(1).join(',')}],"data_offsets":[0,4]}}`, 4),
    (r) => safetensorsBytes(`{"t":${'['.repeat(1 + int(r, 1e5))}}`),
    (r) => safetensorsBytes(`{"__metadata__":{${Array.from({ length: 10_001 + int(r, 10) }, (_, i) => `"k${i}":"v"`).join(',')}}}`),
    (r) => safetensorsBytes(`{"t":{"dtype":"F32","shape":[${pick(r, [1e9, 2 ** 53, 1e300, -1])},${pick(r, [1e9, 3])}],"data_offsets":[0,${pick(r, [0, 4, 1e15])}]}}`, 16),
    () => {
      const b = gpt2.slice();
      new DataView(b.buffer).setUint32(0, 99_999_999, true);
      return b;
    },
  ];
  return {
    name: 'safetensors header',
    next(r, i) {
      let bytes: Uint8Array;
      const roll = r();
      if (roll < 0.1) bytes = pick(r, bombs)(r);
      else if (roll < 0.5) bytes = safetensorsBytes(JSON.stringify(mutateJson(r, parsed)), gpt2.byteLength - 8 - n);
      else {
        bytes = gpt2.slice(0, r() < 0.2 ? int(r, gpt2.byteLength) : gpt2.byteLength);
        for (let k = 0; k < 1 + int(r, 4); k++) if (bytes.byteLength) bytes[int(r, Math.min(bytes.byteLength, 8 + n))]! ^= 1 << int(r, 8);
      }
      return { label: `#${i} (${bytes.byteLength} bytes)`, run: () => accept(() => readSafetensorsHeader(bytesSource(bytes, 'model.safetensors'))) };
    },
  };
}

function configTarget(): Target {
  const fixtures = ['tiny-gpt2', 'tiny-llama', 'tiny-phi3', 'tiny-qwen2'].map(folder);
  return {
    name: 'config.json',
    next(r, i) {
      const files = new Map(pick(r, fixtures));
      const config = JSON.parse(new TextDecoder().decode(files.get('config.json'))) as Record<string, unknown>;
      const layers = pick(r, ['n_layer', 'num_hidden_layers', 'vocab_size', 'hidden_size', 'n_embd', 'intermediate_size', 'max_position_embeddings', 'n_positions', 'num_attention_heads', 'num_key_value_heads', 'head_dim']);
      const mutated = r() < 0.3 ? { ...config, [layers]: pick(r, [1e9, 1e5, 2 ** 53, 0, -3, 1.5, 1e300]) } : mutateJson(r, config);
      files.set('config.json', utf8(r() < 0.1 ? mutateText(r, JSON.stringify(mutated)) : JSON.stringify(mutated)));
      return { label: `#${i}`, run: () => accept(() => openCheckpoint(asFileSet(files), 'fuzz')) };
    },
  };
}

function indexTarget(): Target {
  const llama = folder('tiny-llama');
  const index = JSON.parse(new TextDecoder().decode(llama.get('model.safetensors.index.json'))) as { weight_map: Record<string, string> };
  return {
    name: 'index.json',
    next(r, i) {
      const files = new Map(llama);
      let json: unknown;
      const roll = r();
      if (roll < 0.05) json = { weight_map: Object.fromEntries(Array.from({ length: 100_001 + int(r, 100) }, (_, k) => [`t${k}`, 'model-00001-of-00002.safetensors'])) };
      else if (roll < 0.15) {
        const map: Record<string, unknown> = { ...index.weight_map };
        Object.defineProperty(map, pick(r, ['__proto__', '../x', '\u001b[2J', 'constructor']), { value: pick(r, ['model-00001-of-00002.safetensors', '../../etc/passwd', '__proto__', 5]), enumerable: true });
        json = { weight_map: map };
      } else json = mutateJson(r, index);
      files.set('model.safetensors.index.json', utf8(r() < 0.1 ? mutateText(r, JSON.stringify(json)) : JSON.stringify(json)));
      return { label: `#${i}`, run: () => accept(() => openCheckpoint(asFileSet(files), 'fuzz')) };
    },
  };
}

function tokenizerTarget(): Target {
  const tok = JSON.parse(new TextDecoder().decode(folder('tiny-gpt2').get('tokenizer.json'))) as { model: { vocab: Record<string, number> } } & Record<string, unknown>;
  const tokens = Object.keys(tok.model.vocab);
  return {
    name: 'tokenizer.json',
    next(r, i) {
      let json: unknown;
      const roll = r();
      if (roll < 0.3) {
        const t = structuredClone(tok);
        for (let k = 0; k < 1 + int(r, 3); k++) (t.model.vocab as Record<string, unknown>)[pick(r, tokens)] = pick(r, [1e9, 1e8, 2 ** 53, -1, 0.5, 'x', 299, 1e6]);
        json = t;
      } else if (roll < 0.4) json = { ...tok, model: { type: pick(r, ['Unigram', 'WordPiece', 'WordLevel', 'BPE', 'Nope']), vocab: pick(r, [[['a', 0]], { a: 1e9 }, [], {}]), unk_id: pick(r, [0, 1e9, -1, undefined]) } };
      else json = mutateJson(r, tok);
      return {
        label: `#${i}`,
        run: () =>
          accept(async () => {
            const t = await loadTokenizer(json, 'tokenizer.json');
            const ids = t.encode('The lighthouse keeper, \u001b and ✓ 123');
            t.decode(ids.filter((id) => id < t.vocabSize));
          }),
      };
    },
  };
}

function yamlTarget(): Target {
  const valid = [
    'merge_method: ties',
    'base_model: base',
    'models:',
    '  - model: a',
    '    parameters:',
    '      weight: [0.2, 1.0]',
    '      density:',
    '        - filter: mlp',
    '          value: 0.5',
    '        - value: 0.7',
    '  - model: b',
    '    parameters:',
    '      weight: 0.5',
    'parameters:',
    '  lambda: 0.9',
    '  normalize: true',
    'dtype: bfloat16',
    '',
  ].join('\n');
  const bombs: ((r: Rand) => string)[] = [
    (r) => ['a: &a ["x","x","x","x","x","x","x","x","x"]', ...'bcdefghij'.slice(0, 3 + int(r, 6)).split('').map((k, j) => `${k}: &${k} [${Array(9).fill(`*${'abcdefghij'[j]}`).join(',')}]`)].join('\n'),
    (r) => `merge_method: ${'['.repeat(100 + int(r, 20000))}`,
    (r) => '- '.repeat(100 + int(r, 5000)) + 'x',
    (r) => Array.from({ length: 100 + int(r, 2000) }, (_, k) => `${' '.repeat(k)}k${k}:`).join('\n'),
    () => 'models: &m [*m]\nmerge_method: ties\nbase_model: b\n',
    () => `merge_method: *undefined\n`,
    (r) => `${valid}\nx: "${'y'.repeat(1 + int(r, 2 ** 21))}"\n`,
  ];
  return {
    name: 'YAML',
    next(r, i) {
      const text = r() < 0.15 ? pick(r, bombs)(r) : mutateText(r, valid);
      return { label: `#${i} (${text.length} chars)`, run: () => accept(async () => parseMergekitYaml(text, 'fuzz.yml')) };
    },
  };
}

function cliTarget(out: string): Target {
  const paths = [join(FIX, 'tiny-gpt2'), join(FIX, 'tiny-gpt2-ft-a'), join(FIX, 'tiny-llama'), join(FIX, 'tiny-llama-ft-a'), join(FIX, 'texts', 'prose.txt'), '/dev/zero', '/etc/hostname', '/nonexistent', out, '', '-', '\u001b]0;x\u0007'];
  const flags = ['--base', '--model', '--out', '--config', '--text', '--context', '--batch', '--prompt', '--max-tokens', '--seed', '--merge-seed', '--temperature', '--top-k', '--lambda', '--density', '--gamma', '--t', '--method', '--dtype', '--max-shard-size', '--memory-budget', '--force', '--json', '--quiet', '--resident', '--normalize', '--bogus'];
  const values = ['1', '0', '-5', '1e20', '1e39', '1e8', '1000000000', 'NaN', '0.5', '5GB', '-1KB', 'ties', 'nope', 'f16', 'x', ...paths, `${join(FIX, 'tiny-gpt2-ft-a')}:1e39`, `${join(FIX, 'tiny-gpt2-ft-a')}:0.5`];
  const commands = { merge: runMerge, ppl: runPpl, generate: runGenerate } as const;
  return {
    name: 'CLI arguments',
    next(r, i) {
      const command = pick(r, ['merge', 'ppl', 'generate', 'inspect'] as const);
      const args: string[] = [];
      for (let k = 0; k < 1 + int(r, 8); k++) {
        const flag = pick(r, flags);
        const v = pick(r, values);
        args.push(...(r() < 0.3 ? [`${flag}=${v}`] : [flag, v]));
      }
      if (command === 'inspect') args.splice(0, args.length, pick(r, paths), ...(r() < 0.3 ? ['--json'] : []));
      // A command that gets as far as the GPU has accepted its input: this runtime stops it there.
      const env: CommandEnv = {
        runtime: () => Promise.reject(new ReachedGpu()),
        signal: new AbortController().signal,
        out: () => {},
      };
      return {
        label: `#${i} dem ${command} ${JSON.stringify(args)}`,
        run: async () => {
          const printed: string[] = [];
          const log = console.log;
          const err = console.error;
          console.log = () => {};
          console.error = (...a: unknown[]) => void printed.push(a.map(String).join(' '));
          try {
            await (command === 'inspect' ? runInspect(args) : commands[command](['--quiet', ...args], env));
            return 'accepted';
          } catch (error) {
            if (error instanceof ReachedGpu) return 'accepted';
            if (!isTyped(error)) throw error;
            reportError(error);
            const line = printed.join('\n');
            // eslint-disable-next-line no-control-regex
            if (printed.length !== 1 || /[\u0000-\u001f\u007f-\u009f]/.test(line)) throw new Error(`printed ${printed.length} line(s) or a control character: ${JSON.stringify(line.slice(0, 200))}`);
            throw error;
          } finally {
            console.log = log;
            console.error = err;
          }
        },
      };
    },
  };
}

class ReachedGpu extends Error {}

export async function runFuzz(seed: number, budgetMs: number, perCaseMs: number): Promise<FuzzReport> {
  const started = performance.now();
  const out = mkdtempSync(join(tmpdir(), 'dem-fuzz-'));
  const targets = [safetensorsTarget(), configTarget(), indexTarget(), tokenizerTarget(), yamlTarget(), cliTarget(join(out, 'merged'))];
  const report: FuzzReport = { seed, budgetMs, perCaseMs, targets: {}, failures: [], maxRssBytes: 0, elapsedMs: 0 };
  for (const t of targets) report.targets[t.name] = { cases: 0, accepted: 0, refused: 0, slowestMs: 0, slowest: '' };
  // A warning Node prints on stderr is a second line beside the CLI's one-line error.
  let current = '';
  process.on('warning', (w) => report.failures.push(`process warning during or after ${current}: ${w.name}: ${w.message}`.slice(0, 600)));
  try {
    // Round robin over the targets until the budget is spent; each target has its own stream.
    const streams = targets.map((_, k) => mulberry32(seed * 31 + k));
    for (let i = 0; performance.now() - started < budgetMs; i++) {
      const k = i % targets.length;
      const target = targets[k]!;
      const stats = report.targets[target.name]!;
      const c = target.next(streams[k]!, stats.cases);
      current = `${target.name} ${c.label.slice(0, 200)}`;
      process.stderr.write(`${current.slice(0, 160)}\n`);
      const t0 = performance.now();
      try {
        stats[await c.run()]++;
      } catch (error) {
        if (isTyped(error)) stats.refused++;
        else report.failures.push(`${target.name} ${c.label.slice(0, 300)}: untyped ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`.slice(0, 600));
      }
      const ms = performance.now() - t0;
      stats.cases++;
      if (ms > stats.slowestMs) Object.assign(stats, { slowestMs: ms, slowest: c.label.slice(0, 200) });
      if (ms > perCaseMs) report.failures.push(`${target.name} ${c.label.slice(0, 200)}: took ${ms.toFixed(0)} ms (bound ${perCaseMs} ms)`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  report.maxRssBytes = process.resourceUsage().maxRSS * 1024;
  report.elapsedMs = performance.now() - started;
  return report;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const [seed = '1', budget = '30000', perCase = '2000'] = process.argv.slice(2);
  const report = await runFuzz(Number(seed), Number(budget), Number(perCase));
  process.stdout.write(`${JSON.stringify(report)}\n`);
}
