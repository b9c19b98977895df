/** Human-readable numbers for CLI output. */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** Left-aligned columns. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

/** `text` in lines of at most `width` characters, continuation lines after `indent` spaces (the first is the caller's). */
export function wrap(text: string, width: number, indent: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.join(`\n${' '.repeat(indent)}`);
}

// C0 and C1 controls, DEL, the line/paragraph separators and the bidi overrides/isolates: what
// can move the cursor, retitle or clear a terminal, or make text read in another order.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\x1b': '\\e' };

/**
 * `text` safe to print on a terminal: every control character as a visible escape (\e, \n,
 * \x07, \u202e …). Names from checkpoint files, parse errors and paths all pass through here;
 * `keepLines` leaves \n and \t alone (multi-line output such as a generated text).
 */
export function printable(text: string, keepLines = false): string {
  return text.replace(CONTROL, (c) => {
    if (keepLines && (c === '\n' || c === '\t')) return c;
    const code = c.charCodeAt(0);
    return SHORT[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`);
  });
}

/** Longest error line printed; the rest is counted, not shown (a crafted file can make messages of any size). */
export const MAX_ERROR_CHARS = 4000;

/** A message as one printable line of at most MAX_ERROR_CHARS characters. */
export function oneLine(message: string): string {
  const line = printable(message);
  return line.length <= MAX_ERROR_CHARS ? line : `${line.slice(0, MAX_ERROR_CHARS)}… (${line.length - MAX_ERROR_CHARS} more characters)`;
}
