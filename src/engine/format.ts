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
