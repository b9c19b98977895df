/**
 * Byte counts for people, one convention for the studio and the CLI: binary units (1 KiB = 1024 B),
 * one decimal, whole bytes below 1 KiB: 512 -> '512 B', 1536 -> '1.5 KiB', 548_118_077 -> '522.7 MiB'.
 */
const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(n: number): string {
  let value = n;
  let unit = 0;
  // Move up at 1023.95, not 1024: the value is rounded to one decimal, and '1024.0 KiB' should read '1.0 MiB'.
  while (Math.abs(value) >= 1023.95 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${BYTE_UNITS[unit]}`;
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 };

/**
 * A byte count as people and Hugging Face's `max_shard_size` write it: '5000000000', '5GB' (decimal
 * units, as HF), '4.5GiB' (binary), case-insensitive, whole bytes after scaling (rounded down).
 * Undefined when `text` is not such a size or is not a positive safe integer of bytes.
 */
export function parseByteSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) return undefined;
  const bytes = Math.floor(Number(m[1]) * unit);
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : undefined;
}
