import { useId, useState, type ChangeEvent } from 'react';
import { selectAddTaskFile, selectAddValidationText, selectRemoveTaskFile, selectRemoveValidationText, selectTaskFiles, selectValidationSets } from '../store/index.ts';
import { useStudio } from './store.tsx';

/** Validation sets, one per data distribution: from .txt files or pasted text, each with an optional task file. */
export function ValidationPanel() {
  const sets = useStudio(selectValidationSets);
  const add = useStudio(selectAddValidationText);
  const remove = useStudio(selectRemoveValidationText);
  const [name, setName] = useState('');
  const [text, setText] = useState('');
  const nameId = useId();
  const textId = useId();

  const onFiles = async (event: ChangeEvent<HTMLInputElement>): Promise<void> => {
    const input = event.currentTarget;
    const files = Array.from(input.files ?? []);
    input.value = '';
    for (const f of files) await add(f.name.replace(/\.[^.]+$/, ''), await f.text());
  };

  return (
    <section className="panel" aria-labelledby="val-title" data-testid="validation-panel">
      <h2 id="val-title" className="section-title">
        Validation sets <span className="muted">(one per data distribution)</span>
      </h2>
      <ul className="sets" data-testid="validation-list">
        {sets.map((v) => (
          <li key={v.id} className={`set set--${v.status}`} data-testid="validation-set" data-name={v.name} data-status={v.status}>
            <span className="set__name">{v.name}</span>
            <span className="set__tokens num" data-testid="validation-tokens" data-tokens={v.tokens ?? ''}>
              {v.status === 'ready' ? `${v.tokens?.toLocaleString('en-US')} tokens` : v.status === 'tokenizing' ? 'tokenizing…' : v.status === 'waiting' ? 'needs a base' : ''}
            </span>
            <button type="button" className="button button--small button--quiet" aria-label={`Remove validation set ${v.name}`} onClick={() => remove(v.id)}>
              Remove
            </button>
            {v.error && (
              <span className="set__error" role="alert" data-testid="validation-error">
                {v.error.message}
              </span>
            )}
            <TaskFileLine setId={v.id} setName={v.name} />
          </li>
        ))}
        {sets.length === 0 && <li className="muted">No validation text yet.</li>}
      </ul>
      <form
        className="set-form"
        onSubmit={(e) => {
          e.preventDefault();
          void add(name, text);
          setName('');
          setText('');
        }}
      >
        <label htmlFor={nameId}>Name</label>
        <input id={nameId} className="input" value={name} onChange={(e) => setName(e.currentTarget.value)} placeholder="e.g. prose" data-testid="validation-name" />
        <label htmlFor={textId}>Text</label>
        <textarea id={textId} className="input" rows={3} value={text} onChange={(e) => setText(e.currentTarget.value)} placeholder="Paste held-out text of one distribution" data-testid="validation-text" />
        <div className="set-form__actions">
          <button type="submit" className="button button--primary" data-testid="validation-add">
            Add text
          </button>
          <label className="button file-button">
            <input type="file" className="visually-hidden" accept=".txt,text/plain" multiple onChange={(e) => void onFiles(e)} data-testid="validation-files" />
            Choose .txt files…
          </label>
        </div>
      </form>
    </section>
  );
}

/** The task file of one distribution (JSON Lines: multiple choice or generative items), scored after its perplexity. */
function TaskFileLine({ setId, setName }: { setId: string; setName: string }) {
  const task = useStudio(selectTaskFiles).find((t) => t.setId === setId);
  const add = useStudio(selectAddTaskFile);
  const remove = useStudio(selectRemoveTaskFile);
  const onFile = async (event: ChangeEvent<HTMLInputElement>): Promise<void> => {
    const input = event.currentTarget;
    const file = input.files?.[0];
    input.value = '';
    if (file) await add(setId, file.name, await file.text());
  };
  const state = !task
    ? ''
    : task.status === 'ready'
      ? `${task.items} ${task.kind === 'choice' ? 'multiple-choice' : 'generative'} item${task.items === 1 ? '' : 's'}`
      : task.status === 'preparing'
        ? 'tokenizing…'
        : task.status === 'waiting'
          ? 'needs a base'
          : '';
  return (
    <div className="set__task" data-testid="task-file" data-set={setName} data-status={task?.status ?? 'none'}>
      <span className="small muted">{task ? `Tasks: ${task.name}` : 'No task file'}</span>
      <span className="small num">{state}</span>
      <span className="set__task-actions">
        <label className="button button--small file-button">
          <input type="file" className="visually-hidden" accept=".jsonl,.json,application/jsonl,application/json" onChange={(e) => void onFile(e)} data-testid="task-file-input" aria-label={`Task file for ${setName}`} />
          {task ? 'Replace…' : 'Task file…'}
        </label>
        {task && (
          <button type="button" className="button button--small button--quiet" aria-label={`Remove the task file of ${setName}`} onClick={() => remove(setId)}>
            Remove
          </button>
        )}
      </span>
      {task?.error && (
        <span className="set__error" role="alert" data-testid="task-file-error">
          {task.error.message}
        </span>
      )}
    </div>
  );
}
