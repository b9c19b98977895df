/** Ids that stay unique across reloads (restored entries keep theirs). */
let counter = 0;
const session = Math.random().toString(36).slice(2, 8);
export function newId(prefix: string): string {
  counter += 1;
  return `${prefix}-${session}-${counter}`;
}
