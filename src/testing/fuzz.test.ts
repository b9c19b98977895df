import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { FuzzReport } from './fuzz.ts';

/**
 * Seeded, time-bounded fuzzing of every input the tools read (src/testing/fuzz.ts): safetensors
 * headers, config.json, index.json, tokenizer.json, mergekit YAML and CLI arguments. In a child
 * process with a 1 GiB heap, killed at a deadline, so a hang or runaway allocation fails the test
 * naming the case it was on. Each case must end in an acceptance or a typed DemError within
 * PER_CASE_MS; the CLI's printed error must be one line without control characters.
 */
const SEED = 20_240_612;
const BUDGET_MS = 40_000;
const PER_CASE_MS = 5_000;
const HEAP_MB = 1024;
const MAX_RSS = 1.5 * 2 ** 30;

describe('fuzz: every input reader ends in a typed error within a time and memory bound', () => {
  it(`seed ${SEED}, ${BUDGET_MS / 1000} s, ≤ ${PER_CASE_MS / 1000} s per case, heap ${HEAP_MB} MiB`, async () => {
    const child = spawn(process.execPath, [`--max-old-space-size=${HEAP_MB}`, '--import', 'tsx', 'src/testing/fuzz.ts', String(SEED), String(BUDGET_MS), String(PER_CASE_MS)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let lastCase = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      const lines = d.toString().trim().split('\n');
      lastCase = lines[lines.length - 1] ?? lastCase;
    });
    const deadline = setTimeout(() => child.kill('SIGKILL'), BUDGET_MS + 4 * PER_CASE_MS + 30_000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res) => child.on('exit', (c, s) => res([c, s])));
    clearTimeout(deadline);
    expect({ code, signal }, `the fuzzer died or hung on: ${lastCase}`).toEqual({ code: 0, signal: null });
    const report = JSON.parse(stdout) as FuzzReport;
    const summary = Object.entries(report.targets).map(([name, t]) => `${name}: ${t.cases} cases (${t.accepted} accepted, ${t.refused} refused), slowest ${t.slowestMs.toFixed(0)} ms`);
    console.log(`fuzz seed ${SEED}: ${(report.elapsedMs / 1000).toFixed(1)} s, peak RSS ${(report.maxRssBytes / 2 ** 20).toFixed(0)} MiB\n  ${summary.join('\n  ')}`);
    expect(report.failures).toEqual([]);
    for (const [name, t] of Object.entries(report.targets)) {
      expect(t.cases, name).toBeGreaterThanOrEqual(50);
      expect(t.refused, name).toBeGreaterThan(0);
    }
    expect(report.maxRssBytes).toBeLessThan(MAX_RSS);
  }, 180_000);
});
