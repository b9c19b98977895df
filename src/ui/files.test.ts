import { describe, expect, it } from 'vitest';
import { groupCheckpoints, type PickedFile } from './files.ts';

const pick = (...paths: string[]): PickedFile[] => paths.map((path) => ({ path, file: new File(['x'], path.split('/').pop() ?? path) }));
const shape = (picks: ReturnType<typeof groupCheckpoints>) => picks.map((p) => ({ name: p.name, paths: p.files.map((f) => f.path).sort() }));

describe('groupCheckpoints', () => {
  it('treats a picked folder as one checkpoint named after it, paths relative to it', () => {
    const got = groupCheckpoints(pick('tiny-gpt2/config.json', 'tiny-gpt2/model.safetensors', 'tiny-gpt2/.DS_Store'));
    expect(shape(got)).toEqual([{ name: 'tiny-gpt2', paths: ['config.json', 'model.safetensors'] }]);
  });

  it('splits a parent folder into one checkpoint per config.json folder', () => {
    const got = groupCheckpoints(
      pick('fx/README.md', 'fx/a/config.json', 'fx/a/model.safetensors', 'fx/b/config.json', 'fx/b/m-1.safetensors', 'fx/b/sub/x.bin'),
    );
    expect(shape(got)).toEqual([
      { name: 'a', paths: ['config.json', 'model.safetensors'] },
      { name: 'b', paths: ['config.json', 'm-1.safetensors', 'sub/x.bin'] },
    ]);
  });

  it('keeps loose files together, unnamed', () => {
    const got = groupCheckpoints(pick('config.json', 'model.safetensors', 'tokenizer.json'));
    expect(shape(got)).toEqual([{ name: undefined, paths: ['config.json', 'model.safetensors', 'tokenizer.json'] }]);
  });

  it('still yields one checkpoint without a config.json, so the engine can report it', () => {
    expect(shape(groupCheckpoints(pick('w/model.safetensors')))).toEqual([{ name: 'w', paths: ['model.safetensors'] }]);
    expect(groupCheckpoints([])).toEqual([]);
  });
});

describe('groupCheckpoints: LoRA adapter folders', () => {
  it('a folder with adapter_config.json is one checkpoint pick, beside config.json folders', () => {
    const f = (path: string): { path: string; file: File } => ({ path, file: new File(['x'], path.split('/').pop()!) });
    const picks = groupCheckpoints([f('all/base/config.json'), f('all/base/model.safetensors'), f('all/lora/adapter_config.json'), f('all/lora/adapter_model.safetensors')]);
    expect(picks.map((p) => [p.name, p.files.map((x) => x.path).sort()])).toEqual([
      ['base', ['config.json', 'model.safetensors']],
      ['lora', ['adapter_config.json', 'adapter_model.safetensors']],
    ]);
  });
});
