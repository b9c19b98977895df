import { describe, expect, it } from 'vitest';
import { normaliseShaderSources, specializedShader } from './shaders.ts';

describe('specializedShader', () => {
  const sources = normaliseShaderSources({
    'common/a.wgsl': 'const N: u32 = 4u;\n',
    'k/main.wgsl': '// @include common/a.wgsl\nconst HS_MAX: u32 = 256u;\nconst TILE : u32 = 2048u;\nfn f() { var x: array<f32, HS_MAX>; }\n',
  });

  it('replaces named module constants, in included files too, and leaves the rest', () => {
    const code = specializedShader(sources, 'k/main@HS_MAX=64u,N=8u');
    expect(code).toContain('const HS_MAX: u32 = 64u;');
    expect(code).toContain('const N: u32 = 8u;');
    expect(code).toContain('const TILE : u32 = 2048u;');
    expect(code).toContain('var x: array<f32, HS_MAX>;');
    expect(specializedShader(sources, 'k/main')).toContain('const HS_MAX: u32 = 256u;');
  });

  it('a constant the shader does not have is an error, not a silent no-op', () => {
    expect(() => specializedShader(sources, 'k/main@HS=64u')).toThrow("WGSL shader 'k/main@HS=64u': no module constant 'HS' to set");
    expect(() => specializedShader(sources, 'k/main@HS_MAX')).toThrow(/no module constant 'HS_MAX'/);
  });
});
