import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../random.ts';
import { SafetensorsError } from '../errors.ts';
import { DTYPES, dtypeSize, encodeFromF32, type DType } from './dtypes.ts';
import { findDuplicateKey, MAX_HEADER_LENGTH, readSafetensorsHeader, readTensor, safetensorsLayout, writeSafetensors } from './safetensors.ts';
import { bytesSource, type ByteSource } from './source.ts';

function randomBytes(rand: () => number, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));
}

/** A ByteSource that records every read, to prove laziness. */
function countingSource(bytes: Uint8Array, name: string): ByteSource & { reads: [number, number][]; total(): number } {
  const inner = bytesSource(bytes, name);
  const reads: [number, number][] = [];
  return {
    name,
    size: inner.size,
    reads,
    total: () => reads.reduce((a, [, n]) => a + n, 0),
    read(offset, length) {
      reads.push([offset, length]);
      return inner.read(offset, length);
    },
  };
}

/** A file from a raw header string + data bytes (for hand-made invalid files). */
function rawFile(header: string, data: Uint8Array | number = 0, lengthPrefix?: number): Uint8Array {
  const json = new TextEncoder().encode(header);
  const bytes = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.byteLength + bytes.byteLength);
  const view = new DataView(out.buffer);
  const n = lengthPrefix ?? json.byteLength;
  view.setUint32(0, n % 2 ** 32, true);
  view.setUint32(4, Math.floor(n / 2 ** 32), true);
  out.set(json, 8);
  out.set(bytes, 8 + json.byteLength);
  return out;
}

async function parseError(bytes: Uint8Array, name = 'bad.safetensors'): Promise<SafetensorsError> {
  try {
    await readSafetensorsHeader(bytesSource(bytes, name));
  } catch (e) {
    if (e instanceof SafetensorsError) return e;
    throw new Error(`expected SafetensorsError, got ${String(e)}`);
  }
  throw new Error('expected SafetensorsError, but the file parsed');
}

const sample = (rand: () => number) => [
  { name: 'a.weight', dtype: 'F32' as DType, shape: [3, 5], data: encodeFromF32(Float32Array.from({ length: 15 }, () => rand() - 0.5), 'F32') },
  { name: 'b.bias', dtype: 'BF16' as DType, shape: [7], data: encodeFromF32(Float32Array.from({ length: 7 }, () => rand() - 0.5), 'BF16') },
  { name: 'c', dtype: 'I64' as DType, shape: [2], data: randomBytes(rand, 16) },
  { name: 'd.scalar', dtype: 'F16' as DType, shape: [], data: encodeFromF32([0.5], 'F16') },
  { name: 'e.empty', dtype: 'U8' as DType, shape: [0, 4], data: new Uint8Array(0) },
];

describe('safetensors writer + reader round trip', () => {
  it('round-trips every dtype, scalars, empty tensors and metadata', async () => {
    const rand = mulberry32(1);
    const entries = DTYPES.map((dtype, i) => {
      const shape = [1 + (i % 3), 2 + (i % 4)];
      return { name: `t${i}.${dtype}`, dtype, shape, data: randomBytes(rand, shape[0]! * shape[1]! * dtypeSize(dtype)) };
    });
    entries.push({ name: '0', dtype: 'F32', shape: [], data: encodeFromF32([3.25], 'F32') }); // integer-like name
    entries.push({ name: 'z.empty', dtype: 'BF16', shape: [4, 0], data: new Uint8Array(0) });
    const metadata = { format: 'pt', note: 'ünïcode "quoted"' };
    const bytes = writeSafetensors(entries, metadata);
    const file = await readSafetensorsHeader(bytesSource(bytes, 'rt.safetensors'));
    expect(file.metadata).toEqual(metadata);
    expect(file.headerLength % 8).toBe(0);
    expect(file.dataStart).toBe(8 + file.headerLength);
    expect(file.tensors).toHaveLength(entries.length);
    for (const e of entries) {
      const t = file.tensors.find((x) => x.name === e.name)!;
      expect(t.dtype).toBe(e.dtype);
      expect(t.shape).toEqual(e.shape);
      expect(await readTensor(bytesSource(bytes, 'rt.safetensors'), file, e.name)).toEqual(e.data);
    }
  });

  it('lays the header out as the reference does: u64 LE length, JSON, space padding to 8 bytes', () => {
    const bytes = writeSafetensors([{ name: 'test', dtype: 'I32', shape: [2, 2], data: new Uint8Array(16) }]);
    const json = '{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}';
    const padded = Math.ceil(json.length / 8) * 8;
    expect(Array.from(bytes.subarray(0, 8))).toEqual([padded, 0, 0, 0, 0, 0, 0, 0]);
    expect(new TextDecoder().decode(bytes.subarray(8, 8 + padded))).toBe(json + ' '.repeat(padded - json.length));
    expect(bytes.byteLength).toBe(8 + padded + 16);
  });

  it('orders data by dtype size then name, and the streaming layout matches writeSafetensors', () => {
    const rand = mulberry32(2);
    const entries = sample(rand);
    const layout = safetensorsLayout(entries, { format: 'pt' });
    expect(layout.offsets.map((o) => o.name)).toEqual(['c', 'a.weight', 'b.bias', 'd.scalar', 'e.empty']);
    const streamed = new Uint8Array(layout.totalSize);
    streamed.set(layout.header);
    for (const o of layout.offsets) streamed.set(entries.find((e) => e.name === o.name)!.data, layout.header.byteLength + o.begin);
    expect(streamed).toEqual(writeSafetensors(entries, { format: 'pt' }));
  });

  it('refuses bad writer input with SafetensorsError', () => {
    const data = new Uint8Array(4);
    expect(() => writeSafetensors([{ name: 'x', dtype: 'F32', shape: [2], data }])).toThrow(SafetensorsError);
    expect(() => writeSafetensors([{ name: 'x', dtype: 'F32', shape: [1], data }, { name: 'x', dtype: 'F32', shape: [1], data }])).toThrow(/duplicate/);
    expect(() => writeSafetensors([{ name: '__metadata__', dtype: 'F32', shape: [1], data }])).toThrow(SafetensorsError);
    expect(() => writeSafetensors([{ name: 'x', dtype: 'F33' as DType, shape: [1], data }])).toThrow(SafetensorsError);
    expect(() => writeSafetensors([{ name: 'x', dtype: 'F32', shape: [-1], data }])).toThrow(SafetensorsError);
  });
});

describe('lazy reads', () => {
  it('reads only the prefix and header, then exactly one tensor range', async () => {
    const rand = mulberry32(3);
    const big = { name: 'big', dtype: 'F32' as DType, shape: [1000], data: randomBytes(rand, 4000) };
    const bytes = writeSafetensors([...sample(rand), big]);
    const source = countingSource(bytes, 'lazy.safetensors');
    const file = await readSafetensorsHeader(source);
    expect(source.total()).toBe(8 + file.headerLength);
    source.reads.length = 0;
    const b = await readTensor(source, file, 'b.bias');
    expect(b.byteLength).toBe(14);
    expect(source.reads).toEqual([[file.dataStart + file.tensors.find((t) => t.name === 'b.bias')!.begin, 14]]);
    expect(source.total()).toBeLessThan(bytes.byteLength / 100);
  });

  it('names the file and tensor when asked for a missing tensor or when the read fails', async () => {
    const bytes = writeSafetensors(sample(mulberry32(4)));
    const file = await readSafetensorsHeader(bytesSource(bytes, 'x.safetensors'));
    await expect(readTensor(bytesSource(bytes, 'x.safetensors'), file, 'nope')).rejects.toThrow("x.safetensors, tensor 'nope'");
    const truncated = bytesSource(bytes.subarray(0, file.dataStart + 4), 'x.safetensors');
    await expect(readTensor(truncated, file, 'a.weight')).rejects.toBeInstanceOf(SafetensorsError);
  });
});

describe('header validation', () => {
  const d16 = new Uint8Array(16);
  const cases: [string, Uint8Array, RegExp][] = [
    ['shorter than 8 bytes', new Uint8Array(5), /shorter than the 8-byte/],
    ['huge length prefix', rawFile('{}', 0, 2 ** 40), /exceeds/],
    ['length prefix just over the limit', rawFile('{}', 0, MAX_HEADER_LENGTH + 1), /exceeds/],
    ['length prefix past end of file', rawFile('{}', 0, 1000), /past the end/],
    ['not UTF-8', rawFile('{"a\xff":1}').map((b, i, a) => (i === a.length - 3 ? 0xff : b)), /UTF-8/],
    ['not JSON', rawFile('{"a":'), /not valid JSON/],
    ['JSON array', rawFile('[1,2]'), /start with '\{'/],
    ['leading space', rawFile(' {}'), /start with '\{'/],
    ['byte order mark', rawFile('\ufeff{}'), /start with '\{'/],
    ['metadata not object', rawFile('{"__metadata__":[1]}'), /__metadata__/],
    ['metadata value not string', rawFile('{"__metadata__":{"k":1}}'), /__metadata__ value for 'k'/],
    ['entry not object', rawFile('{"w":5}'), /tensor 'w'.*entry must be an object/],
    ['missing dtype', rawFile('{"w":{"shape":[4],"data_offsets":[0,16]}}', d16), /tensor 'w'.*missing dtype/],
    ['unknown dtype', rawFile('{"w":{"dtype":"F128","shape":[4],"data_offsets":[0,16]}}', d16), /tensor 'w'.*unknown dtype/],
    ['lowercase dtype', rawFile('{"w":{"dtype":"f32","shape":[4],"data_offsets":[0,16]}}', d16), /unknown dtype/],
    ['negative dim', rawFile('{"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}', d16), /non-negative integers/],
    ['fractional dim', rawFile('{"w":{"dtype":"F32","shape":[4.5],"data_offsets":[0,16]}}', d16), /non-negative integers/],
    ['string dim', rawFile('{"w":{"dtype":"F32","shape":["4"],"data_offsets":[0,16]}}', d16), /non-negative integers/],
    ['shape not array', rawFile('{"w":{"dtype":"F32","shape":4,"data_offsets":[0,16]}}', d16), /shape must be an array/],
    ['offsets wrong arity', rawFile('{"w":{"dtype":"F32","shape":[4],"data_offsets":[0]}}', d16), /data_offsets must be \[begin, end\]/],
    ['offsets fractional', rawFile('{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16.5]}}', d16), /non-negative integers/],
    ['begin > end', rawFile('{"w":{"dtype":"F32","shape":[0],"data_offsets":[16,0]}}', d16), /begin > end/],
    ['size mismatch', rawFile('{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}', d16), /needs 12/],
    ['unknown entry key', rawFile('{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16],"x":1}}', d16), /unknown key 'x'/],
    ['gap', rawFile('{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', d16), /gap/],
    ['overlap', rawFile('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', d16), /tensor 'b'.*overlap/],
    ['past data section', rawFile('{"w":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}}', d16), /past the data section/],
    ['trailing data', rawFile('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', d16), /data section is 16 bytes/],
    ['data with no tensors', rawFile('{}', d16), /cover 0 bytes/],
    ['duplicate tensor name', rawFile('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', d16), /tensor 'w'.*duplicate tensor name/],
    ['duplicate key in entry', rawFile('{"w":{"dtype":"F32","dtype":"F16","shape":[4],"data_offsets":[0,16]}}', d16), /duplicate key 'dtype'/],
    ['escaped duplicate name', rawFile('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"\\u0077":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', d16), /duplicate tensor name/],
    ['huge shape', rawFile('{"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,16]}}', d16), /too large|needs/],
  ];
  for (const [label, bytes, pattern] of cases) {
    it(`rejects: ${label}`, async () => {
      const error = await parseError(bytes);
      expect(error.message).toMatch(/^bad\.safetensors/);
      expect(error.message).toMatch(pattern);
      expect(error.file).toBe('bad.safetensors');
    });
  }

  it('accepts null metadata, zero-size tensors sharing an offset, and an empty file {}', async () => {
    await expect(readSafetensorsHeader(bytesSource(rawFile('{"__metadata__":null}'), 'a'))).resolves.toMatchObject({ tensors: [] });
    const ok = rawFile('{"z":{"dtype":"F32","shape":[0],"data_offsets":[8,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}', 8);
    expect((await readSafetensorsHeader(bytesSource(ok, 'b'))).tensors.map((t) => t.name)).toEqual(['z', 'a', 'y']);
  });

  it('findDuplicateKey reports nesting and ignores equal keys in different objects', () => {
    expect(findDuplicateKey('{"a":{"x":1},"b":{"x":2}}')).toBeNull();
    expect(findDuplicateKey('{"a":{"x":[{"k":1,"k":2}]}}')).toEqual({ key: 'k', path: ['a', 'x'] });
    expect(findDuplicateKey('{"a\\"b":1,"a\\"b":2}')).toEqual({ key: 'a"b', path: [] });
    expect(findDuplicateKey('{"s":"{\\"q\\":1,\\"q\\":2}"}')).toBeNull(); // braces inside strings
  });
});

describe('fuzzing: mutated and truncated files yield SafetensorsError or a valid parse, never anything else', () => {
  /** Independent check that a parse result is self-consistent (what every accepted file must satisfy). */
  function checkInvariants(file: Awaited<ReturnType<typeof readSafetensorsHeader>>, size: number): void {
    const names = new Set(file.tensors.map((t) => t.name));
    expect(names.size).toBe(file.tensors.length);
    const sorted = [...file.tensors].sort((a, b) => a.begin - b.begin || a.end - b.end);
    let cursor = 0;
    for (const t of sorted) {
      expect(t.begin).toBe(cursor);
      expect(t.end - t.begin).toBe(t.shape.reduce((a, b) => a * b, 1) * dtypeSize(t.dtype));
      cursor = t.end;
    }
    expect(file.dataStart + cursor).toBe(size);
  }

  it('survives 1500 seeded mutations within a time bound', async () => {
    const started = performance.now();
    const rand = mulberry32(12345);
    const base = writeSafetensors(sample(rand), { format: 'pt' });
    const headerEnd = 8 + new DataView(base.buffer).getUint32(0, true);
    const headerText = new TextDecoder().decode(base.subarray(8, headerEnd));
    const stats = { rejected: 0, accepted: 0 };
    const mutations: ((b: Uint8Array) => Uint8Array)[] = [
      // bit flips in the prefix and header
      (b) => {
        const c = b.slice();
        const flips = 1 + Math.floor(rand() * 3);
        for (let k = 0; k < flips; k++) {
          const i = Math.floor(rand() * headerEnd);
          c[i]! ^= 1 << Math.floor(rand() * 8);
        }
        return c;
      },
      // truncation anywhere
      (b) => b.slice(0, Math.floor(rand() * b.byteLength)),
      // extra bytes appended
      (b) => {
        const c = new Uint8Array(b.byteLength + 1 + Math.floor(rand() * 9));
        c.set(b);
        return c;
      },
      // random length prefix (small, near, huge)
      (b) => {
        const c = b.slice();
        const choices = [Math.floor(rand() * 2 ** 32), headerEnd - 8 + Math.floor(rand() * 17) - 8, Math.floor(rand() * 64)];
        const v = choices[Math.floor(rand() * choices.length)]!;
        new DataView(c.buffer).setUint32(0, v >>> 0, true);
        if (rand() < 0.2) new DataView(c.buffer).setUint32(4, 1 + Math.floor(rand() * 1000), true);
        return c;
      },
      // rewrite one number in the header (offsets, shapes) keeping the header length
      (b) => {
        const numbers = [...headerText.matchAll(/\d+/g)];
        const m = numbers[Math.floor(rand() * numbers.length)]!;
        const replacement = String(Math.floor(rand() * 10 ** m[0].length)).padStart(m[0].length, '0').slice(-m[0].length);
        const text = headerText.slice(0, m.index) + replacement + headerText.slice(m.index! + m[0].length);
        const c = b.slice();
        c.set(new TextEncoder().encode(text), 8);
        return c;
      },
      // random header garbage of the same length
      (b) => {
        const c = b.slice();
        const start = 8 + Math.floor(rand() * (headerEnd - 8));
        const len = 1 + Math.floor(rand() * 6);
        for (let i = start; i < Math.min(headerEnd, start + len); i++) c[i] = '{}[]",:0123456789 \\"-.eE'.charCodeAt(Math.floor(rand() * 25));
        return c;
      },
      // a second copy of an entry under the same name (duplicate key) or a renamed one (overlap)
      (b) => {
        const entry = headerText.match(/"a\.weight":\{[^}]*\}/)![0];
        const extra = rand() < 0.5 ? entry : entry.replace('a.weight', 'a.copy');
        return rawFile(headerText.trimEnd().replace(/\}$/, `,${extra}}`), b.subarray(headerEnd));
      },
      // dtype swapped for another (usually a size mismatch) or a bogus one
      (b) => {
        const dtypes = [...DTYPES, 'F4', 'bf16', '', 'F32 '];
        const text = headerText.trimEnd().replace(/"dtype":"[^"]*"/, `"dtype":"${dtypes[Math.floor(rand() * dtypes.length)]}"`);
        return rawFile(text, b.subarray(headerEnd));
      },
    ];
    for (let i = 0; i < 1500; i++) {
      const mutate = mutations[i % mutations.length]!;
      const bytes = mutate(base);
      try {
        const file = await readSafetensorsHeader(bytesSource(bytes, `fuzz-${i}.safetensors`));
        checkInvariants(file, bytes.byteLength);
        stats.accepted++;
      } catch (e) {
        if (!(e instanceof SafetensorsError)) throw new Error(`mutation ${i}: expected SafetensorsError, got ${String(e)}`);
        expect(e.message.startsWith(`fuzz-${i}.safetensors`)).toBe(true);
        stats.rejected++;
      }
    }
    console.log(`fuzz: ${stats.rejected} rejected, ${stats.accepted} accepted in ${(performance.now() - started).toFixed(0)} ms`);
    expect(stats.rejected).toBeGreaterThan(1000);
    expect(performance.now() - started).toBeLessThan(15_000);
  });
});
