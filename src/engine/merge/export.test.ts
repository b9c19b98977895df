import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { folderFileSet } from '../../node/files.ts';
import { folderSink } from '../../node/sink.ts';
import { withGpu } from '../../testing/gpu.ts';
import { InputError } from '../errors.ts';
import { openCheckpoint, type Checkpoint } from '../io/checkpoint.ts';
import { planMerge, streamMerge, type MergedTensor, type MergeJob } from './execute.ts';
import { exportMerged, planShards, type FolderSink } from './export.ts';
import { parseRecipe } from './recipe.ts';

/**
 * The exporter: shards + index that read back equal to a single-file export, and an export that
 * fails half way leaves no file that looks complete (each file is written as `.partial` and
 * renamed when whole; config.json, which makes a folder loadable, is written last).
 */
const FIX = resolve('e2e/fixtures');
const tmp = mkdtempSync(join(tmpdir(), 'dem-export-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function open(dir: string, name = dir): Promise<Checkpoint> {
  return openCheckpoint(await folderFileSet(dir), name);
}

async function llamaJob(): Promise<MergeJob> {
  const base = await open(join(FIX, 'tiny-llama'), 'tiny-llama');
  const models = await Promise.all(['a', 'b'].map((s) => open(join(FIX, `tiny-llama-ft-${s}`), `ft-${s}`)));
  const recipe = parseRecipe({ version: 1, method: 'task_arithmetic', base: 'tiny-llama', models: models.map((m) => ({ model: m.name, parameters: { weight: 0.6 } })), parameters: {} });
  return { recipe, base, models };
}

/** Yields the merge's tensors and throws after `count` of them (a device loss, a read error, ...). */
async function* failingAfter(tensors: AsyncIterable<MergedTensor>, count: number): AsyncGenerator<MergedTensor> {
  let i = 0;
  for await (const t of tensors) {
    if (i++ === count) throw new Error('simulated failure mid-export');
    yield t;
  }
}

describe('exportMerged', () => {
  it('shards + index read back equal to the single-file export', async () => {
    await withGpu(async (rt) => {
      const job = await llamaJob();
      const plan = planMerge(job);
      const single = join(tmp, 'single');
      const sharded = join(tmp, 'sharded');
      const one = await exportMerged(folderSink(single), job.base, plan, streamMerge(rt, job, { output: 'bytes' }));
      const many = await exportMerged(folderSink(sharded), job.base, plan, streamMerge(rt, job, { output: 'bytes' }), { maxShardBytes: 20_000 });
      const shards = planShards(plan, 20_000);
      expect(shards.length).toBeGreaterThan(3);
      expect(one.files).toContain('model.safetensors');
      expect(many.files).toEqual([...shards.map((s) => s.file), 'model.safetensors.index.json', 'config.json', 'tokenizer.json']);
      expect(many.bytes).toBe(one.bytes);
      const a = await open(single);
      const b = await open(sharded);
      expect(b.sharded).toBe(true);
      expect(b.weightFiles).toEqual(shards.map((s) => s.file));
      for (const t of a.tensors.values()) {
        const u = b.tensors.get(t.name)!;
        expect([u.dtype, u.shape]).toEqual([t.dtype, t.shape]);
        expect(Buffer.from(await b.read(t.name)).equals(Buffer.from(await a.read(t.name))), t.name).toBe(true);
      }
      expect(readdirSync(sharded).filter((f) => f.endsWith('.partial'))).toEqual([]);
    });
  });

  it('carries the tokenizer files and chat templates of Qwen3 and Gemma 2 through untouched', async () => {
    for (const family of ['qwen3', 'gemma2']) {
      const base = await open(join(FIX, `tiny-${family}`), family);
      const models = await Promise.all(['a', 'b'].map((s) => open(join(FIX, `tiny-${family}-ft-${s}`), `ft-${s}`)));
      const recipe = parseRecipe({ version: 1, method: 'task_arithmetic', base: family, models: models.map((m) => ({ model: m.name, parameters: { weight: 0.5 } })), parameters: {} });
      const job = { recipe, base, models };
      const out = join(tmp, `chat-${family}`);
      const result = await withGpu((rt) => exportMerged(folderSink(out), base, planMerge(job), streamMerge(rt, job, { output: 'bytes' })));
      const carried = readdirSync(join(FIX, `tiny-${family}`)).filter((f) => !f.endsWith('.safetensors') && f !== 'config.json');
      expect(carried).toContain('tokenizer_config.json');
      if (family === 'qwen3') expect(carried).toContain('chat_template.jinja');
      for (const f of carried) {
        expect(result.files, f).toContain(f);
        expect(readFileSync(join(out, f)).equals(readFileSync(join(FIX, `tiny-${family}`, f))), f).toBe(true);
      }
      const config = JSON.parse(readFileSync(join(out, 'tokenizer_config.json'), 'utf8')) as { chat_template?: string };
      if (family === 'gemma2') expect(config.chat_template).toMatch(/<start_of_turn>/);
    }
  });

  it('a merge that fails half way leaves no complete-looking weights file and no config.json', async () => {
    await withGpu(async (rt) => {
      const job = await llamaJob();
      const plan = planMerge(job);
      const out = join(tmp, 'failed-single');
      const error = await exportMerged(folderSink(out), job.base, plan, failingAfter(streamMerge(rt, job, { output: 'bytes' }), 5)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((error as Error).message).toBe('simulated failure mid-export');
      expect(readdirSync(out)).toEqual([]);
      // Sharded: shards finished before the failure stay, but without index or config.json the
      // folder does not open as a checkpoint.
      const out2 = join(tmp, 'failed-sharded');
      await exportMerged(folderSink(out2), job.base, plan, failingAfter(streamMerge(rt, job, { output: 'bytes' }), 12), { maxShardBytes: 20_000 }).catch(() => undefined);
      const left = readdirSync(out2);
      expect(left.some((f) => f.endsWith('.partial') || f === 'config.json' || f === 'model.safetensors.index.json')).toBe(false);
      await expect(open(out2)).rejects.toThrow(/config\.json/);
    });
  });

  it('a stream that ends early or out of order is refused', async () => {
    await withGpu(async (rt) => {
      const job = await llamaJob();
      const plan = planMerge(job);
      const tensors: MergedTensor[] = [];
      for await (const t of streamMerge(rt, job, { output: 'bytes' })) tensors.push(t);
      // Swapped pair: the writer would otherwise put bytes under the wrong header entry.
      const swapped = [tensors[1]!, tensors[0]!, ...tensors.slice(2)];
      const list = async function* (xs: MergedTensor[]): AsyncGenerator<MergedTensor> {
        yield* xs;
      };
      const out = join(tmp, 'swapped');
      await expect(exportMerged(folderSink(out), job.base, plan, list(swapped))).rejects.toBeInstanceOf(InputError);
      await expect(exportMerged(folderSink(join(tmp, 'short')), job.base, plan, list(tensors.slice(0, 4)))).rejects.toThrow(/merge ended before tensor/);
      expect(existsSync(join(out, 'model.safetensors'))).toBe(false);
    });
  });

  it('the sink sees only .partial names until a file is whole', async () => {
    await withGpu(async (rt) => {
      const job = await llamaJob();
      const events: string[] = [];
      const inner = folderSink(join(tmp, 'events'));
      const sink: FolderSink = {
        async create(path) {
          const w = await inner.create(path);
          events.push(`create ${path}`);
          return {
            write: (c) => w.write(c),
            close: async () => {
              await w.close();
              events.push(`close ${path}`);
              expect(existsSync(join(tmp, 'events', path))).toBe(true);
            },
            abort: () => w.abort(),
          };
        },
      };
      await exportMerged(sink, job.base, planMerge(job), streamMerge(rt, job, { output: 'bytes' }));
      expect(events.slice(0, 2)).toEqual(['create model.safetensors', 'close model.safetensors']);
      expect(events.indexOf('close config.json')).toBeGreaterThan(events.indexOf('close model.safetensors'));
    });
  });
});
