import { useEffect, useRef, useState } from 'react';
import { parseMergekitYaml, parseRecipe, type MergeRecipe } from '../engine/index.ts';
import { recipeFromHash, recipeHash, selectApplyRecipe, selectCanRedo, selectCanUndo, selectRedo, selectUndo } from '../store/index.ts';
import { useStudio, useStudioStore } from './store.tsx';

/** A recipe file as the studio reads it: `.yml`/`.yaml` as mergekit YAML, anything else as recipe JSON. */
export function parseRecipeFile(name: string, text: string): MergeRecipe {
  if (/\.ya?ml$/i.test(name)) return parseMergekitYaml(text, name);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // Not JSON: maybe YAML under another name; its parser says what is wrong.
    return parseMergekitYaml(text, name);
  }
  return parseRecipe(json, name);
}

/** Undo / redo and importing a recipe file, above the method picker. */
export function RecipeTools() {
  const undo = useStudio(selectUndo);
  const redo = useStudio(selectRedo);
  const canUndo = useStudio(selectCanUndo);
  const canRedo = useStudio(selectCanRedo);
  const apply = useStudio(selectApplyRecipe);
  const input = useRef<HTMLInputElement>(null);
  const [message, setMessage] = useState<{ error: boolean; text: string } | null>(null);
  const onFile = async (file: File | undefined): Promise<void> => {
    if (!file) return;
    try {
      const r = apply(parseRecipeFile(file.name, await file.text()));
      if (!r.ok) setMessage({ error: true, text: `${file.name}: ${r.error}` });
      else setMessage({ error: false, text: r.unmatched.length ? `${file.name} applied; not loaded here: ${r.unmatched.join(', ')}` : `${file.name} applied` });
    } catch (error) {
      setMessage({ error: true, text: error instanceof Error ? error.message : String(error) });
    }
    if (input.current) input.current.value = '';
  };
  return (
    <div className="recipe-tools">
      <div className="row">
        <button type="button" className="button button--small button--quiet" disabled={!canUndo} onClick={undo} data-testid="undo" aria-keyshortcuts="Control+Z" title="Undo (Ctrl+Z)">
          Undo
        </button>
        <button type="button" className="button button--small button--quiet" disabled={!canRedo} onClick={redo} data-testid="redo" aria-keyshortcuts="Control+Shift+Z" title="Redo (Ctrl+Shift+Z)">
          Redo
        </button>
        <label className="button button--small button--quiet">
          Import recipe…
          <input ref={input} type="file" className="visually-hidden" accept=".json,.yml,.yaml,application/json,application/yaml" onChange={(e) => void onFile(e.target.files?.[0])} data-testid="import-recipe" />
        </label>
      </div>
      {message && (
        <p className={message.error ? 'card__error' : 'small muted'} role={message.error ? 'alert' : 'status'} data-testid="import-status">
          {message.text}
        </p>
      )}
    </div>
  );
}

const isTextField = (t: EventTarget | null): boolean =>
  t instanceof HTMLTextAreaElement || (t instanceof HTMLInputElement && ['text', 'search', 'url', 'email', 'password'].includes(t.type)) || (t instanceof HTMLElement && t.isContentEditable);

/** Ctrl+Z / Ctrl+Shift+Z (and Ctrl+Y; ⌘ on macOS) undo and redo, except inside a text field, which keeps its own. */
export function useUndoKeys(): void {
  const store = useStudioStore();
  useEffect(() => {
    const onKey = (e: KeyboardEvent): void => {
      if (!(e.ctrlKey || e.metaKey) || e.altKey || isTextField(e.target)) return;
      const key = e.key.toLowerCase();
      if (key === 'z' && !e.shiftKey) store.getState().undo();
      else if ((key === 'z' && e.shiftKey) || key === 'y') store.getState().redo();
      else return;
      e.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [store]);
}

/**
 * The current recipe in the page's URL (`#recipe=…`, fine-tunes by name) so a merge can be shared
 * or bookmarked: read once the saved workspace is back (applied as soon as its fine-tunes are
 * loaded), then written on every change with replaceState (no history entry per slider step).
 */
export function useRecipeUrl(): void {
  const store = useStudioStore();
  useEffect(() => {
    let pending: MergeRecipe | undefined;
    try {
      pending = recipeFromHash(window.location.hash);
    } catch (error) {
      store.getState().reportError('The recipe in the page address was not applied', error);
    }
    let ready = false;
    const write = (): void => {
      if (!ready || pending) return;
      const r = store.getState().recipeFiles();
      if ('error' in r) return;
      const hash = recipeHash(parseRecipe(JSON.parse(r.json)));
      if (hash !== window.location.hash) history.replaceState(null, '', `${window.location.pathname}${window.location.search}${hash}`);
    };
    const tryApply = (): void => {
      if (!pending) return;
      const s = store.getState();
      const wanted = pending.models.length;
      const loaded = s.checkpoints.filter((c) => c.role === 'finetune' && c.status === 'ready').length;
      const busy = s.checkpoints.some((c) => c.status === 'inspecting');
      if (busy || loaded < wanted) return;
      const recipe = pending;
      pending = undefined;
      const r = s.applyRecipe(recipe);
      if (!r.ok) s.notify({ level: 'error', title: 'The recipe in the page address was not applied', message: r.error });
      else if (r.unmatched.length) s.notify({ level: 'warning', title: 'Recipe from the page address', message: `Not loaded here: ${r.unmatched.join(', ')}` });
    };
    void store.restored.then(() => {
      ready = true;
      tryApply();
      write();
    });
    const unsubscribe = store.subscribe((s, prev) => {
      if (s.checkpoints !== prev.checkpoints) tryApply();
      if (s.method !== prev.method || s.params !== prev.params || s.coefficients !== prev.coefficients || s.checkpoints !== prev.checkpoints) write();
    });
    return unsubscribe;
  }, [store]);
}
