import type { FileEntry } from '../worker/protocol.ts';
import { errorRecord } from './errors.ts';
import type { StudioStore } from './index.ts';
import type { SearchRow } from './types.ts';

/**
 * The demo workspace (public/demo, written by `npm run make-demo`): a base, one fine-tune per
 * distribution, a data-mixing baseline, and a validation text and a task file per distribution;
 * the tokens each run trained and the searched grid (perplexity and task scores, measured by
 * scripts/demo/tasks.ts with the engine) come with it, so the DEM-vs-mixing table and the
 * perplexity/score view are there from the start. Loaded when the user has no saved workspace,
 * or on `?demo`. Everything is fetched from the page's own origin.
 */
export interface DemoManifest {
  checkpoints: { name: string; path: string; role: 'base' | 'fine-tune' | 'mixing'; distribution?: string; tokensSeen?: number }[];
  distributions: { id: string; title?: string; validation: string; task?: string }[];
  tasks?: { search?: { points: { weights: Record<string, number>; ppl: Record<string, number>; score: Record<string, number> }[] } };
}

/** Files every demo checkpoint folder holds (HF layout, single safetensors). */
const CHECKPOINT_FILES = ['config.json', 'model.safetensors', 'tokenizer.json'];

type Fetch = (url: string) => Promise<Response>;

export async function fetchOk(fetcher: Fetch, url: string): Promise<Response> {
  const res = await fetcher(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res;
}

/** Resolves `path` under `root` and refuses anything that leaves the page's origin. */
export function sameOrigin(root: URL, path: string): string {
  const url = new URL(path, root);
  if (url.origin !== root.origin) throw new Error(`demo manifest names a file on another origin: ${path}`);
  return url.href;
}

export async function fetchDemoManifest(root: URL, fetcher: Fetch = (u) => fetch(u)): Promise<DemoManifest | null> {
  const res = await fetcher(sameOrigin(root, 'manifest.json'));
  // A dev server answers unknown paths with index.html: only JSON counts as a manifest.
  if (!res.ok || !(res.headers.get('content-type') ?? '').includes('json')) return null;
  const manifest = (await res.json()) as DemoManifest;
  if (!Array.isArray(manifest.checkpoints) || !Array.isArray(manifest.distributions)) throw new Error('demo manifest.json has no checkpoints or distributions');
  return manifest;
}

/**
 * Adds the demo's base, fine-tunes, data-mixing baseline (compared with, never merged),
 * validation texts and task files (unless `tasks` is false) to the store. Resolves to false when
 * there is no demo on the server.
 */
export async function loadDemo(store: StudioStore, root: URL, fetcher: Fetch = (u) => fetch(u), options: { tasks?: boolean } = {}): Promise<boolean> {
  const manifest = await fetchDemoManifest(root, fetcher);
  if (!manifest) return false;
  const folder = async (path: string): Promise<FileEntry[]> =>
    Promise.all(
      CHECKPOINT_FILES.map(async (f) => {
        const blob = await (await fetchOk(fetcher, sameOrigin(root, `${path.replace(/\/?$/, '/')}${f}`))).blob();
        return { path: f, file: new File([blob], f) };
      }),
    );
  const base = manifest.checkpoints.find((c) => c.role === 'base');
  if (!base) throw new Error('demo manifest.json has no base checkpoint');
  const fineTunes = manifest.checkpoints.filter((c) => c.role === 'fine-tune' || c.role === 'mixing');
  const [baseFiles, texts, ...ftFiles] = await Promise.all([
    folder(base.path),
    Promise.all(manifest.distributions.map(async (d) => ({ name: d.id, text: await (await fetchOk(fetcher, sameOrigin(root, d.validation))).text() }))),
    ...fineTunes.map((c) => folder(c.path)),
  ]);
  const s = store.getState();
  // The base first: the first checkpoint added becomes the base.
  await s.addCheckpoint(base.name, baseFiles, { id: `demo-${base.name}`, role: 'base' });
  await Promise.all(fineTunes.map((c, i) => s.addCheckpoint(c.name, ftFiles[i]!, { id: `demo-${c.name}`, role: c.role === 'mixing' ? 'mixing' : 'finetune' })));
  for (const c of fineTunes) if (c.tokensSeen !== undefined) s.setTrainedTokens(`demo-${c.name}`, c.tokensSeen);
  const setIds = await Promise.all(texts.map((t) => s.addValidationText(t.name, t.text)));
  const withTasks = options.tasks ?? true;
  const taskTexts = await Promise.all(manifest.distributions.map(async (d) => (withTasks && d.task ? (await fetchOk(fetcher, sameOrigin(root, d.task))).text() : null)));
  await Promise.all(manifest.distributions.map((d, i) => (taskTexts[i] === null ? undefined : s.addTaskFile(setIds[i]!, d.task!.split('/').pop()!, taskTexts[i]!))));
  const points = manifest.tasks?.search?.points ?? [];
  // The grid make-demo searched (each point measured with the engine): weights by distribution → the fine-tune of that distribution.
  const tunes = manifest.checkpoints.filter((c) => c.role === 'fine-tune' && c.distribution);
  if (points.length && tunes.length) {
    const bySet = (r: Record<string, number>): Record<string, number> => Object.fromEntries(manifest.distributions.map((d, i) => [setIds[i]!, r[d.id]!]).filter(([, v]) => v !== undefined));
    const mean = (r: Record<string, number>): number | undefined => (Object.keys(r).length ? Object.values(r).reduce((a, b) => a + b, 0) / Object.keys(r).length : undefined);
    const rows: SearchRow[] = points.map((p, i) => ({ id: i + 1, weights: tunes.map((t) => p.weights[t.distribution!] ?? 0), ppls: bySet(p.ppl), objective: mean(bySet(p.ppl))!, scores: bySet(p.score), taskObjective: mean(bySet(p.score)) }));
    store.setState({ searchRows: rows, searchKind: 'grid', searchCoefIds: tunes.map((t) => `demo-${t.name}`) });
  }
  return true;
}

/**
 * On start: load the demo when nothing was restored (first visit) or when `?demo` asks for it;
 * `?nodemo` never loads it. `?demo` never removes anything: with a saved workspace the page opens
 * a separate session for it (src/main.tsx: nothing restored, nothing stored; `separate`) and says
 * so; a workspace that is open here anyway is kept and the demo is not loaded over it. Failures
 * are reported, never thrown.
 */
export async function startWithDemo(store: StudioStore, query: URLSearchParams, root = new URL('/demo/', location.href), options: { separate?: Promise<boolean> } = {}): Promise<void> {
  if (query.has('nodemo')) return;
  await store.restored;
  const s = store.getState();
  const empty = s.checkpoints.length === 0 && s.validationSets.length === 0;
  if (!empty) {
    if (query.has('demo')) {
      s.notify({ level: 'info', title: 'The demo was not opened', message: 'Your workspace is open and was kept. Open the page with ?demo again to see the demo in a separate session, or remove your items first.' });
    }
    return;
  }
  try {
    const loaded = await loadDemo(store, root);
    if (loaded && (await options.separate)) {
      store.getState().notify({
        level: 'info',
        title: 'The demo opened in a separate session',
        message: 'Your saved workspace is untouched and comes back when you open the studio without ?demo. Nothing you do in this demo session is stored.',
      });
    }
  } catch (error) {
    store.getState().notify({ level: 'warning', title: 'The demo workspace could not be loaded', message: errorRecord(error).message });
  }
}
