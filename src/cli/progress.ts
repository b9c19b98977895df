import { CancelledError } from '../engine/index.ts';
import { printable } from './format.ts';

/** Progress lines on stderr: a redrawn line on a terminal, plain lines (every ~5%) otherwise. */
export class Progress {
  private readonly start = Date.now();
  private lastPct = -1;

  constructor(
    private readonly what: string,
    private readonly quiet = false,
  ) {}

  update(done: number, total: number, item?: string): void {
    if (this.quiet) return;
    const pct = total > 0 ? Math.floor((100 * done) / total) : 100;
    const elapsed = (Date.now() - this.start) / 1000;
    const eta = done > 0 ? (elapsed * (total - done)) / done : 0;
    const line = printable(`${this.what}: ${done}/${total} (${pct}%) ${elapsed.toFixed(1)}s elapsed, ETA ${eta.toFixed(1)}s${item ? `  ${item}` : ''}`);
    if (process.stderr.isTTY) {
      process.stderr.write(`\r\x1b[K${line}`);
    } else if (pct >= this.lastPct + 5 || done === total) {
      process.stderr.write(`${line}\n`);
      this.lastPct = pct;
    }
  }

  done(message: string): void {
    if (this.quiet) return;
    if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
    process.stderr.write(`${printable(`${this.what}: done in ${((Date.now() - this.start) / 1000).toFixed(1)}s: ${message}`)}\n`);
  }
}

// One pair of process-wide handlers (installed once, so repeated commands in one process, as in
// the tests, add no listeners) cancelling the latest command.
let current: AbortController | undefined;
let installed = false;

function onSignal(): void {
  if (!current || current.signal.aborted) process.exit(130);
  process.stderr.write('\ncancelling… (again to force)\n');
  current.abort(new CancelledError());
}

/**
 * An AbortSignal that fires on Ctrl-C / SIGTERM, so long commands stop between units of work;
 * a second Ctrl-C exits at once (130).
 */
export function cancelOnSignals(): AbortSignal {
  if (!installed) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    installed = true;
  }
  current = new AbortController();
  return current.signal;
}
