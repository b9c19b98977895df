import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Hub ids (`org/name`, `name`, with an optional `@revision` as mergekit writes it) found in the
 * local Hugging Face cache, the way transformers opens them offline (huggingface_hub's cache
 * layout: `<cache>/models--org--name/refs/<ref>` holds a commit, `snapshots/<commit>/` the files).
 */
const HUB_ID = /^(?:[\w.-]+\/)?[\w.-]+(?:@[\w./-]+)?$/;

/** True for what can only be a hub id, never a relative folder the user meant (`./x`, `a/b/c`). */
export function looksLikeHubId(id: string): boolean {
  return HUB_ID.test(id) && !id.startsWith('.') && !id.includes('..');
}

/** The hub cache folder: HF_HUB_CACHE, else HF_HOME/hub, else XDG_CACHE_HOME (or ~/.cache)/huggingface/hub. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HUGGINGFACE_HUB_CACHE) return env.HUGGINGFACE_HUB_CACHE;
  const home = env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface');
  return join(home, 'hub');
}

/** The snapshot folder of `id` in the cache (ref `main` unless `@revision` names a ref or a commit), or undefined. */
export function findInHubCache(id: string, cache = hubCacheDir()): string | undefined {
  const [name, revision = 'main'] = id.split('@') as [string, string?];
  const repo = join(cache, `models--${name.split('/').join('--')}`);
  const ref = join(repo, 'refs', revision);
  const commit = existsSync(ref) && statSync(ref).isFile() ? readFileSync(ref, 'utf8').trim() : revision;
  const snapshot = join(repo, 'snapshots', commit);
  return existsSync(snapshot) && statSync(snapshot).isDirectory() ? snapshot : undefined;
}
