import { useCallback, useEffect, useId, useRef, useState, type RefObject } from 'react';
import { selectConnectGpu, selectLearnCancel } from '../../store/index.ts';
import { GpuStatus } from '../GpuStatus.tsx';
import { useStudio } from '../store.tsx';
import { useSearchBest, StepChart } from './Charts.tsx';
import { StepControl } from './Controls.tsx';
import { promptsOf, useDemo, useLearnReady } from './data.ts';
import { STEPS, type LearnStep } from './steps.ts';
import { learnHash, parseLearnHash, type LearnRoute } from './url.ts';
import './learn.css';

/**
 * Learn mode: the lesson in steps.ts on the demo workspace, one step at a time. The address
 * holds the step and its parameters (url.ts): the control writes them, the back button and a
 * shared link restore them. Keys: → / PageDown next step, ← / PageUp previous (the arrows not
 * while a slider or a choice has focus, where they change the value; PageUp/PageDown not on a slider).
 */
function currentRoute(): LearnRoute {
  const r = parseLearnHash(location.hash);
  return r && STEPS.some((s) => s.id === r.step) ? r : { step: STEPS[0]!.id, params: r?.params.big ? { big: r.params.big } : {} };
}

/** The step's parameters: chart defaults, then the step's preset, then the address. */
function paramsOf(step: LearnStep, route: LearnRoute): Record<string, string> {
  const defaults: Record<string, string> = step.chart.kind === 'search' ? { budget: String(step.chart.budget) } : {};
  return { ...defaults, ...step.preset, ...route.params };
}

export function LearnApp() {
  const connect = useStudio(selectConnectGpu);
  const cancel = useStudio(selectLearnCancel);
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    void connect();
  }, [connect]);
  useEffect(() => {
    const onHash = (): void => setRoute(currentRoute());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  const index = Math.max(0, STEPS.findIndex((s) => s.id === route.step));
  const step = STEPS[index]!;
  const big = route.params.big === '1';

  const go = useCallback(
    (i: number) => {
      const next = STEPS[Math.min(STEPS.length - 1, Math.max(0, i))]!;
      if (next.id === step.id) return;
      // Work for the step being left is dropped; what it measured stays known.
      cancel();
      location.hash = learnHash({ step: next.id, params: big ? { big: '1' } : {} });
    },
    [step.id, big, cancel],
  );
  const setParam = useCallback(
    (name: string, value: string) => {
      const next = { step: route.step || step.id, params: { ...route.params, [name]: value } };
      if (name !== 'big' && name !== 'guess' && name !== 'reveal') cancelStale(cancel, step, name);
      history.replaceState(null, '', learnHash(next));
      setRoute(next);
    },
    [route, step, cancel],
  );

  useEffect(() => {
    const onKey = (e: KeyboardEvent): void => {
      if (e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
      const t = e.target as HTMLElement | null;
      // Arrows belong to a focused slider or choice; PageUp/PageDown only to a slider or text.
      const input = t?.tagName === 'INPUT' ? (t as HTMLInputElement).type : null;
      const pageKeysFree = !(t && (t.tagName === 'SELECT' || t.tagName === 'TEXTAREA' || t.isContentEditable || (input !== null && input !== 'radio' && input !== 'checkbox')));
      const arrowsFree = pageKeysFree && input === null;
      if ((e.key === 'ArrowRight' && arrowsFree) || (e.key === 'PageDown' && pageKeysFree)) {
        e.preventDefault();
        go(index + 1);
      } else if ((e.key === 'ArrowLeft' && arrowsFree) || (e.key === 'PageUp' && pageKeysFree)) {
        e.preventDefault();
        go(index - 1);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [go, index]);

  // A new step: its heading takes the focus, so keyboard and screen-reader users start there.
  const heading = useRef<HTMLHeadingElement>(null);
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    heading.current?.focus();
  }, [step.id]);

  return (
    <div className={`learn${big ? ' learn--big' : ''}`} data-testid="learn">
      <header className="topbar">
        <h1 className="topbar__title">
          DEM Studio <span className="learn-badge">Learn</span>
        </h1>
        <div className="learn-top__actions">
          <button type="button" className="button button--small" aria-pressed={big} onClick={() => setParam('big', big ? '0' : '1')} data-testid="learn-big">
            Large type
          </button>
          <a className="button button--small" href="./" onClick={(e) => (e.preventDefault(), location.assign(location.pathname))} data-testid="learn-exit">
            Open the studio
          </a>
          <GpuStatus />
        </div>
      </header>
      <div className="learn-body">
        <nav className="learn-nav" aria-label="Lesson steps">
          <ol>
            {STEPS.map((s, i) => (
              <li key={s.id}>
                <a href={learnHash({ step: s.id, params: big ? { big: '1' } : {} })} aria-current={i === index ? 'step' : undefined} data-testid="learn-nav-link">
                  {s.title}
                </a>
              </li>
            ))}
          </ol>
        </nav>
        <main className="learn-main">
          <StepView key={step.id} step={step} index={index} params={paramsOf(step, route)} setParam={setParam} big={big} headingRef={heading} />
          <div className="learn-pager">
            <button type="button" className="button" onClick={() => go(index - 1)} disabled={index === 0} data-testid="learn-prev">
              ← Back
            </button>
            <span className="muted" aria-live="polite">
              Step {index + 1} of {STEPS.length}
            </span>
            {index < STEPS.length - 1 ? (
              <button type="button" className="button button--primary" onClick={() => go(index + 1)} data-testid="learn-next">
                Next →
              </button>
            ) : (
              <a className="button button--primary" href="./" onClick={(e) => (e.preventDefault(), location.assign(location.pathname))} data-testid="learn-finish">
                Finish: open the studio
              </a>
            )}
          </div>
        </main>
      </div>
    </div>
  );
}

/** A control that changes which merges the chart needs drops the merges asked for the old value. */
function cancelStale(cancel: () => void, step: LearnStep, name: string): void {
  // The colour of the heat map and the DEM choice reuse what is measured; other controls move on.
  if (name === 'colour' || name === 'budget') return;
  if (step.control.kind === 'weight' || step.control.kind === 'vector' || step.control.kind === 'model' || step.control.kind === 'prompt' || step.control.kind === 'dem') cancel();
}

function StepView({
  step,
  index,
  params,
  setParam,
  big,
  headingRef,
}: {
  step: LearnStep;
  index: number;
  params: Record<string, string>;
  setParam: (name: string, value: string) => void;
  big: boolean;
  headingRef: RefObject<HTMLHeadingElement | null>;
}) {
  const demo = useDemo();
  const ready = useLearnReady();
  const searchBest = useSearchBest();
  const guess = params.guess ?? null;
  const revealed = !step.predict || params.reveal === '1';
  return (
    <article className="learn-step" data-testid="learn-step" data-step={step.id} aria-labelledby="learn-step-title">
      <p className="learn-step__count muted">
        Step {index + 1} of {STEPS.length}
      </p>
      <h2 id="learn-step-title" className="learn-step__title" tabIndex={-1} ref={headingRef}>
        {step.title}
      </h2>
      {step.body.map((p, i) => (
        <p key={i} className="learn-step__text">
          {p}
        </p>
      ))}
      {!ready.ready || !demo ? (
        <p className={ready.failed ? 'card__error' : 'muted'} role={ready.failed ? 'alert' : 'status'} data-testid="learn-loading">
          {ready.message}
        </p>
      ) : (
        <>
          <div className="learn-control">
            <StepControl
              spec={step.control}
              params={params}
              setParam={setParam}
              distributions={demo.distributions}
              prompts={promptsOf(demo)}
              hasSearch={!!searchBest}
            />
          </div>
          {step.predict && !revealed && <Predict step={step} distributions={demo.distributions} guess={guess} setParam={setParam} />}
          <StepChart step={step} params={params} demo={demo} ready={ready.ready} big={big} guess={revealed ? guess : null} revealed={revealed} />
        </>
      )}
      <p className="learn-try" data-testid="learn-try">
        <strong>Try it:</strong> {step.tryIt}
      </p>
    </article>
  );
}

/** Predict, then reveal: the chart stays hidden (while its merges are measured) until the learner commits. */
function Predict({ step, distributions, guess, setParam }: { step: LearnStep; distributions: { id: string; title: string }[]; guess: string | null; setParam: (n: string, v: string) => void }) {
  const id = useId();
  const p = step.predict!;
  const choices = p.choices === 'distributions' ? distributions.map((d) => ({ id: d.id, label: d.id })) : p.choices;
  return (
    <fieldset className="learn-predict" data-testid="learn-predict">
      <legend>Predict first: {p.question}</legend>
      {choices.map((c) => (
        <label key={c.id} className="learn-choice__option" data-checked={c.id === guess}>
          <input type="radio" name={`${id}-guess`} value={c.id} checked={c.id === guess} onChange={() => setParam('guess', c.id)} />
          <span>{c.label}</span>
        </label>
      ))}
      <button type="button" className="button button--primary" disabled={!guess} onClick={() => setParam('reveal', '1')} data-testid="learn-reveal">
        Reveal
      </button>
    </fieldset>
  );
}
