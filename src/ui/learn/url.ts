/**
 * Learn mode's address: `#/learn/<step>?name=value&…`. The step and its parameters (the control's
 * value, the prediction, `big=1` for large type) are all in the hash, so a link opens the lesson
 * at the same step in the same state, and the browser's back button walks back through steps.
 */
export interface LearnRoute {
  step: string;
  params: Record<string, string>;
}

const PREFIX = '#/learn';

export function isLearnHash(hash: string): boolean {
  return hash === PREFIX || hash.startsWith(`${PREFIX}/`) || hash.startsWith(`${PREFIX}?`);
}

/** The route in `hash`; null when it is not a Learn mode address. */
export function parseLearnHash(hash: string): LearnRoute | null {
  if (!isLearnHash(hash)) return null;
  const rest = hash.slice(PREFIX.length).replace(/^\//, '');
  const q = rest.indexOf('?');
  const step = decodeURIComponent(q < 0 ? rest : rest.slice(0, q));
  const params = Object.fromEntries(new URLSearchParams(q < 0 ? '' : rest.slice(q + 1)));
  return { step, params };
}

export function learnHash(route: LearnRoute): string {
  const query = new URLSearchParams(Object.entries(route.params).sort(([a], [b]) => a.localeCompare(b))).toString();
  return `${PREFIX}/${encodeURIComponent(route.step)}${query ? `?${query}` : ''}`;
}
