import { useEffect, useRef, useState, type ChangeEvent } from 'react';
import { selectAddCheckpoint, selectNotify } from '../store/index.ts';
import { canOpenInPlace, fromDataTransfer, fromFileList, groupCheckpoints, pickFolderInPlace, type PickedFile } from './files.ts';
import { useStudio } from './store.tsx';

// Loose files have no folder name; they are numbered across both pickers and drops.
let looseCount = 0;

/** Adds each checkpoint found in `picked`; loose files get a numbered name. */
function useAddPicked(): (picked: PickedFile[]) => void {
  const add = useStudio(selectAddCheckpoint);
  const notify = useStudio(selectNotify);
  return (picked) => {
    const groups = groupCheckpoints(picked);
    if (groups.length === 0) {
      notify({ level: 'warning', title: 'Nothing to add', message: 'No files were chosen (hidden files are ignored).' });
      return;
    }
    for (const group of groups) {
      void add(group.name ?? `checkpoint ${++looseCount}`, group.files);
    }
  };
}

/**
 * "Add checkpoint": a folder picker (webkitdirectory), a multi-file picker for loose files
 * (config.json + *.safetensors [+ index] [+ tokenizer.json]), and drops anywhere on the page.
 */
export function AddCheckpoint() {
  const addPicked = useAddPicked();
  const notify = useStudio(selectNotify);
  const inPlace = canOpenInPlace();

  // File System Access: the folder's handles come along, so a large checkpoint is read in place, not copied.
  const onOpenInPlace = (): void => {
    void pickFolderInPlace().then(
      (picked) => picked && addPicked(picked),
      (error: unknown) => notify({ level: 'error', title: 'Could not open the folder', message: error instanceof Error ? error.message : String(error) }),
    );
  };

  const onPick = (event: ChangeEvent<HTMLInputElement>): void => {
    const input = event.currentTarget;
    if (input.files && input.files.length > 0) addPicked(fromFileList(input.files));
    // Picking the same folder again must fire `change` again.
    input.value = '';
  };

  return (
    <section className="add" aria-labelledby="add-title" data-testid="add-checkpoint">
      <h2 id="add-title" className="add__title">
        Add checkpoint
      </h2>
      <div className="add__controls">
        <label className="button button--primary file-button">
          <input
            type="file"
            className="visually-hidden"
            multiple
            data-testid="folder-input"
            onChange={onPick}
            // Not in React's typings; Chromium, Firefox and Safari all support it.
            {...{ webkitdirectory: '', directory: '' }}
          />
          Choose folder…
        </label>
        {inPlace && (
          <button type="button" className="button file-button" onClick={onOpenInPlace} data-testid="open-in-place" title="Large checkpoints are read where they are (not copied into browser storage); the browser asks again for access after a restart.">
            Open folder in place…
          </button>
        )}
        <label className="button file-button">
          <input
            type="file"
            className="visually-hidden"
            multiple
            accept=".json,.safetensors,application/json"
            data-testid="files-input"
            onChange={onPick}
          />
          Choose files…
        </label>
        <p className="add__hint">
          A Hugging Face checkpoint folder: <code>config.json</code>, <code>*.safetensors</code> (and{' '}
          <code>model.safetensors.index.json</code> when sharded), optionally <code>tokenizer.json</code>. Or drop it
          anywhere on the page. Files stay on this computer.
        </p>
      </div>
    </section>
  );
}

/** Page-wide drop target with an overlay while files are dragged over the window. */
export function DropZone() {
  const addPicked = useAddPicked();
  const [active, setActive] = useState(false);
  // Latest callback without re-binding the window listeners on every render.
  const addRef = useRef(addPicked);
  useEffect(() => {
    addRef.current = addPicked;
  });

  useEffect(() => {
    let depth = 0;
    const hasFiles = (event: DragEvent): boolean => event.dataTransfer?.types.includes('Files') ?? false;
    const enter = (event: DragEvent): void => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      depth += 1;
      setActive(true);
    };
    const over = (event: DragEvent): void => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      if (event.dataTransfer) event.dataTransfer.dropEffect = 'copy';
    };
    const leave = (event: DragEvent): void => {
      if (!hasFiles(event)) return;
      depth = Math.max(0, depth - 1);
      if (depth === 0) setActive(false);
    };
    const drop = (event: DragEvent): void => {
      if (!event.dataTransfer) return;
      event.preventDefault();
      depth = 0;
      setActive(false);
      void fromDataTransfer(event.dataTransfer).then((picked) => addRef.current(picked));
    };
    window.addEventListener('dragenter', enter);
    window.addEventListener('dragover', over);
    window.addEventListener('dragleave', leave);
    window.addEventListener('drop', drop);
    return () => {
      window.removeEventListener('dragenter', enter);
      window.removeEventListener('dragover', over);
      window.removeEventListener('dragleave', leave);
      window.removeEventListener('drop', drop);
    };
  }, []);

  return (
    <div className={`dropzone${active ? ' dropzone--active' : ''}`} aria-hidden={!active} data-testid="dropzone">
      <div className="dropzone__panel">Drop a checkpoint folder or its files to add it</div>
    </div>
  );
}
