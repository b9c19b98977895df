#!/usr/bin/env bash
# Prepares .gpu/ (git-ignored) for a machine with a real GPU but no npm registry, so that a few
# minutes of GPU time are spent measuring: esbuild bundles of the CLI and the GPU scripts (no
# node_modules needed there), the `webgpu` package's Dawn addon for linux-x64, a Vulkan loader,
# and this machine's Node binary (xz-compressed). Carry .gpu/ with the working tree and run
# `bash scripts/gpu/run.sh OUTDIR` there (it unpacks what is compressed). About 35 MB.
#   bash scripts/gpu/bundle.sh            (from anywhere; needs npm ci done)
set -euo pipefail
cd "$(dirname "$0")/../.."
G=.gpu
rm -rf "$G"
mkdir -p "$G/bin" "$G/lib" "$G/node_modules/webgpu/dist"

esbuild() {
  npx esbuild --bundle --platform=node --format=esm --target=node20 --external:webgpu --log-level=warning \
    --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" "$@"
}
# The CLI: the same main() as src/cli/dem.mjs runs through tsx.
echo "import { main } from '../src/cli/main.ts'; process.exitCode = await main(process.argv.slice(2));" > "$G/dem.ts"
esbuild "$G/dem.ts" --outfile="$G/bin/dem.mjs"
rm "$G/dem.ts"
for s in make-fixtures bench-ppl-gpu bench-merge bench-scale; do
  [ -f "scripts/$s.ts" ] && esbuild "scripts/$s.ts" --outfile="$G/bin/$s.mjs"
done

# Dawn for linux-x64 (the package's JS plus the one native addon it loads there).
W=node_modules/webgpu
cp "$W/package.json" "$G/node_modules/webgpu/"
find "$W" -maxdepth 1 -name '*.js' -exec cp {} "$G/node_modules/webgpu/" \;
mkdir -p "$G/node_modules/webgpu/dist/linux-x64"
xz -T0 -6 -c "$W/dist/linux-x64/dawn.node" > "$G/node_modules/webgpu/dist/linux-x64/dawn.node.xz"
# A Vulkan loader (Debian's chromium ships one); the GPU machine's driver provides the ICD.
for lib in /usr/lib/x86_64-linux-gnu/libvulkan.so.1 /usr/lib/chromium/libvulkan.so.1; do
  if [ -e "$lib" ]; then cp -L "$lib" "$G/lib/libvulkan.so.1"; break; fi
done
[ -e "$G/lib/libvulkan.so.1" ] || { echo "error: no libvulkan.so.1 here to carry (apt-get install libvulkan1)" >&2; exit 1; }
xz -T0 -6 -c "$(command -v node)" > "$G/node.xz"
node --version > "$G/node.version"
du -sh "$G"
