import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { CancelledError, InputError, openCheckpoint, StorageFullError, type GpuRuntime } from '../engine/index.ts';
import { folderFileSet } from '../node/files.ts';
import type { Disk } from '../node/sink.ts';
import { testRuntime } from '../testing/gpu.ts';
import { reportError } from './main.ts';
import { runMerge } from './merge.ts';
import type { CommandEnv } from './session.ts';

/**
 * `dem merge --out`: the output folder is a transaction (src/node/sink.ts). Nothing the user had
 * is overwritten or mixed with a new merge, and an interrupted, failed or refused export leaves
 * no folder that looks complete. Refusals happen before the GPU is started: these tests hand the
 * command a runtime that fails the test if asked for.
 */
const FIX = resolve('e2e/fixtures');
const GPT2 = join(FIX, 'tiny-gpt2');
const FT_A = join(FIX, 'tiny-gpt2-ft-a');
const FT_B = join(FIX, 'tiny-gpt2-ft-b');
const LLAMA = join(FIX, 'tiny-llama');
const LLAMA_FT = join(FIX, 'tiny-llama-ft-a');

const tmp = mkdtempSync(join(tmpdir(), 'dem-output-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const fresh = (name = 'out'): string => join(tmp, `${name}${n++}`);

/** Every file under `dir` (relative path → sha256), to prove a folder untouched. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[relative(dir, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

/** Temporary or set-aside folders an export may have left beside its target. */
const leftovers = (dir: string): string[] => readdirSync(dir).filter((f) => f.includes('.dem-partial-') || f.includes('.dem-old-'));

/** A runtime that fails the test when the command starts GPU work. */
const noGpu = (): CommandEnv => ({
  runtime: () => {
    throw new Error('the GPU was started for an export that should have been refused first');
  },
});
const gpu: CommandEnv = { runtime: () => testRuntime() };

async function merge(args: string[], env: CommandEnv = gpu): Promise<unknown> {
  return runMerge(['--quiet', ...args], env).then(
    (code) => code,
    (e: unknown) => e,
  );
}

describe('dem merge --out: never into an input folder (finding 1)', () => {
  it('refuses an --out that is, lies inside or contains the base or a model folder (real paths), before any GPU work; the input stays byte for byte', async () => {
    const base = fresh('base');
    cpSync(GPT2, base, { recursive: true });
    const before = snapshot(base);
    const link = fresh('link');
    symlinkSync(base, link);
    const cases: [string, RegExp][] = [
      [base, /is the input folder/],
      [`${base}/`, /is the input folder/],
      [link, /is the input folder/],
      [join(base, 'merged'), /lies inside the input folder/],
      [join(link, 'a', 'b'), /lies inside the input folder/],
      [tmp, /contains the input folder/],
    ];
    for (const [out, why] of cases) {
      const error = await merge(['--base', base, '--model', `${FT_A}:0.5`, '--out', out, '--force'], noGpu());
      expect(error, out).toBeInstanceOf(InputError);
      expect((error as Error).message, out).toMatch(why);
    }
    // The model folder is an input too.
    const ft = fresh('ft');
    cpSync(FT_A, ft, { recursive: true });
    const error = await merge(['--base', GPT2, '--model', `${ft}:0.5`, '--out', ft, '--force'], noGpu());
    expect((error as Error).message).toMatch(/is the input folder/);
    expect(snapshot(base)).toEqual(before);
    expect(existsSync(join(base, 'merged'))).toBe(false);
    expect(leftovers(tmp)).toEqual([]);
  });
});

describe('dem merge --out: a reused folder (finding 2)', () => {
  it('refuses a non-empty --out without --force; with --force a sharded merge replaces a single-file one completely', async () => {
    const out = fresh();
    expect(await merge(['--base', LLAMA, '--model', `${LLAMA_FT}:0.5`, '--out', out])).toBe(0);
    expect(readdirSync(out)).toContain('model.safetensors');
    writeFileSync(join(out, 'notes.txt'), 'the user wrote this');
    const first = snapshot(out);

    const refused = await merge(['--base', LLAMA, '--model', `${LLAMA_FT}:0.9`, '--max-shard-size', '40KB', '--out', out], noGpu());
    expect(refused).toBeInstanceOf(InputError);
    expect((refused as Error).message).toMatch(/is not empty .*--force/);
    expect(snapshot(out)).toEqual(first);

    expect(await merge(['--base', LLAMA, '--model', `${LLAMA_FT}:0.9`, '--max-shard-size', '40KB', '--out', out, '--force'])).toBe(0);
    const files = readdirSync(out).sort();
    // Nothing of the old folder survives: no stale model.safetensors beside the new shards.
    expect(files).not.toContain('model.safetensors');
    expect(files).not.toContain('notes.txt');
    expect(files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length).toBeGreaterThan(1);
    expect(files).toContain('model.safetensors.index.json');
    const ckpt = await openCheckpoint(await folderFileSet(out), 'out');
    expect(ckpt.sharded).toBe(true);
    expect(JSON.parse(readFileSync(join(out, 'dem-recipe.json'), 'utf8')).models[0].parameters.weight).toBe(0.9);
    expect(leftovers(tmp)).toEqual([]);
  });

  it('an empty existing folder is used without --force; a file as --out is refused (one line, no EEXIST trace)', async () => {
    const empty = fresh();
    mkdirSync(empty);
    expect(await merge(['--base', GPT2, '--model', `${FT_A}:0.5`, '--out', empty])).toBe(0);
    expect(readdirSync(empty)).toContain('config.json');
    const file = fresh('file');
    writeFileSync(file, 'host name');
    const error = await merge(['--base', GPT2, '--model', `${FT_A}:0.5`, '--out', file, '--force'], noGpu());
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toMatch(/exists and is not a folder/);
    expect(readFileSync(file, 'utf8')).toBe('host name');
  });
});

describe('dem merge: cancelled exports (finding 3)', () => {
  /** Aborts the command's signal once `after` tensors have been read back from the GPU. */
  async function cancelling(after: number): Promise<{ env: CommandEnv; reads: () => number }> {
    const rt = await testRuntime();
    const controller = new AbortController();
    let reads = 0;
    const wrapped = Object.create(rt) as GpuRuntime;
    wrapped.read = async (...args: Parameters<GpuRuntime['read']>) => {
      const r = await rt.read(...args);
      if (++reads === after) controller.abort(new CancelledError());
      return r;
    };
    return { env: { runtime: async () => wrapped, signal: controller.signal }, reads: () => reads };
  }

  it('Ctrl-C half way into an existing folder (--force) leaves it exactly as it was; into a new one leaves nothing', async () => {
    const out = fresh();
    expect(await merge(['--base', LLAMA, '--model', `${LLAMA_FT}:0.5`, '--max-shard-size', '40KB', '--out', out])).toBe(0);
    const before = snapshot(out);
    const c = await cancelling(12);
    const error = await merge(['--base', LLAMA, '--model', `${LLAMA_FT}:0.9`, '--max-shard-size', '40KB', '--out', out, '--force'], c.env);
    expect(error).toBeInstanceOf(CancelledError);
    expect(c.reads()).toBeGreaterThanOrEqual(12);
    expect(snapshot(out)).toEqual(before);

    const newOut = fresh();
    const c2 = await cancelling(12);
    expect(await merge(['--base', LLAMA, '--model', `${LLAMA_FT}:0.9`, '--max-shard-size', '40KB', '--out', newOut], c2.env)).toBeInstanceOf(CancelledError);
    expect(existsSync(newOut)).toBe(false);
    expect(leftovers(tmp)).toEqual([]);
  });

  it('a real SIGINT to `dem merge` half way: exit 130, one line, --out untouched; a second SIGINT still leaves no temporary folder', async () => {
    const runCli = async (out: string, signals: number): Promise<{ code: number | null; stderr: string }> => {
      const child = spawn(process.execPath, ['src/cli/dem.mjs', 'merge', '--base', LLAMA, '--model', `${LLAMA_FT}:0.7`, '--max-shard-size', '10KB', '--out', out, '--force'], {
        env: { ...process.env, LD_LIBRARY_PATH: `/usr/lib/chromium:${process.env.LD_LIBRARY_PATH ?? ''}` },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      let sent = false;
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        // Half way (non-TTY progress lines come every 5%; by then shards are complete): stop the
        // process where it is, then Ctrl-C.
        if (!sent && /merge: \d+\/\d+ \(([5-8]\d)%\)/.test(stderr)) {
          sent = true;
          child.kill('SIGSTOP');
          for (let i = 0; i < signals; i++) child.kill('SIGINT');
          child.kill('SIGCONT');
        }
      });
      const code = await new Promise<number | null>((res) => child.on('exit', (c, s) => res(c ?? (s ? 128 : null))));
      expect(sent, `no progress line seen: ${stderr}`).toBe(true);
      return { code, stderr };
    };
    const out = fresh();
    mkdirSync(out);
    writeFileSync(join(out, 'model.safetensors'), 'an older merge');
    const before = snapshot(out);
    const once = await runCli(out, 1);
    expect(once.code).toBe(130);
    expect(once.stderr).toMatch(/^dem: error: cancelled$/m);
    expect(once.stderr).not.toMatch(/\n\s+at /);
    expect(snapshot(out)).toEqual(before);
    expect(leftovers(tmp)).toEqual([]);

    const twice = await runCli(out, 2);
    expect(twice.code).toBe(130);
    expect(snapshot(out)).toEqual(before);
    expect(leftovers(tmp)).toEqual([]);
  }, 60_000);
});

describe('dem merge: full or read-only disks (finding 4)', () => {
  it('too little free space for the plan: StorageFullError before any GPU work, nothing created', async () => {
    const out = fresh();
    const disk: Partial<Disk> = { statfs: async () => ({ bavail: 10, bsize: 4096 }) };
    const error = await merge(['--base', GPT2, '--model', `${FT_A}:0.5`, '--out', out], { ...noGpu(), disk });
    expect(error).toBeInstanceOf(StorageFullError);
    expect((error as Error).message).toMatch(/not enough free space .* needs .*\(\d+ bytes\), 40\.0 KiB are available/);
    expect(existsSync(out)).toBe(false);
    expect(leftovers(tmp)).toEqual([]);
  });

  it('ENOSPC in the middle of a shard: one-line StorageFullError, no folder under --out, the temporary folder removed', async () => {
    const out = fresh();
    let written = 0;
    const disk: Partial<Disk> = {
      open: async (path, flags) => {
        const { open } = await import('node:fs/promises');
        const handle = await open(path, flags);
        return {
          write: async (data: Uint8Array, offset: number, length: number) => {
            if ((written += length) > 100_000) throw Object.assign(new Error(`ENOSPC: no space left on device, write`), { code: 'ENOSPC' });
            return handle.write(data, offset, length);
          },
          close: () => handle.close(),
        };
      },
    };
    const error = await merge(['--base', GPT2, '--model', `${FT_A}:0.5`, '--model', `${FT_B}:0.5`, '--out', out], { ...gpu, disk });
    expect(error).toBeInstanceOf(StorageFullError);
    expect((error as Error).message).toMatch(/model\.safetensors: cannot write .*the disk is full \(ENOSPC\)/);
    expect(existsSync(out)).toBe(false);
    expect(leftovers(tmp)).toEqual([]);
    const lines: string[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void lines.push(a.map(String).join(' ')));
    try {
      expect(reportError(error)).toBe(1);
    } finally {
      spy.mockRestore();
    }
    expect(lines).toHaveLength(1);
    expect(lines[0]!.split('\n')).toHaveLength(1);
  });

  it('a read-only file system or a folder without write permission: a clear error before any GPU work', async () => {
    for (const code of ['EROFS', 'EACCES'] as const) {
      const out = fresh();
      const disk: Partial<Disk> = {
        mkdir: async () => {
          throw Object.assign(new Error(`${code}: mkdir`), { code });
        },
      };
      const error = await merge(['--base', GPT2, '--model', `${FT_A}:0.5`, '--out', out], { ...noGpu(), disk });
      expect(error, code).toBeInstanceOf(InputError);
      expect((error as Error).message).toMatch(code === 'EROFS' ? /read-only \(EROFS\)/ : /permission denied \(EACCES\)/);
      expect(existsSync(out)).toBe(false);
    }
  });

  it('the free-space estimate is the exact size written', async () => {
    const out = fresh();
    let planned = 0;
    const disk: Partial<Disk> = {
      statfs: async (p) => {
        const { statfs } = await import('node:fs/promises');
        return statfs(p);
      },
    };
    const { folderSink } = await import('../node/sink.ts');
    const sink = folderSink(out, { disk });
    const begin = sink.begin!.bind(sink);
    sink.begin = async (plan) => {
      planned = plan.bytes;
      return begin(plan);
    };
    const { Workspace, parseRecipe } = await import('../engine/index.ts');
    const ws = new Workspace({ runtime: () => testRuntime() });
    await ws.open('b', 'b', await folderFileSet(LLAMA));
    await ws.open('a', 'a', await folderFileSet(LLAMA_FT));
    const recipe = parseRecipe({ version: 1, method: 'task_arithmetic', base: 'b', models: [{ model: 'a', parameters: { weight: 0.5 } }], parameters: {} });
    await ws.exportMerge(recipe, sink, { maxShardBytes: 40_000, extraFiles: { 'dem-recipe.json': '{}\n' } });
    const total = readdirSync(out).reduce((s, f) => s + statSync(join(out, f)).size, 0);
    expect(planned).toBe(total);
  });
});
