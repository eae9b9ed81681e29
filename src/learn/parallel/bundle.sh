#!/bin/sh
# A self-contained, compressed training bundle for a host that has no node_modules and no image
# files (and, with WITH_NODE=1, no Node.js either):
#   OUT/pw/standalone.js         the learn commands (train, evaluate) in one ESM file
#   OUT/pw/worker.js             the data-parallel training worker, beside it
#   OUT/pw/*.wasm                the tfjs wasm backend binaries (found beside the bundle)
#   OUT/data.manifest.json.xz    the dataset list (paths, labels, sizes, fingerprint)
#   OUT/cache/images/*.u8.xz     the prepared images for that list
#   OUT/node.xz                  this machine's node binary (WITH_NODE=1; same OS and CPU family)
#   OUT/run.sh                   unpacks (once, into a temporary folder) and runs the learn CLI
# Usage: [WITH_NODE=1] src/learn/parallel/bundle.sh OUT DATA_DIR [IMAGE_SIZE]
# from the repository root, after a training run here has filled .cache/images at IMAGE_SIZE.
# On the host, from a checkout of the repository (for models/splits):
#   sh OUT/run.sh train --data OUT/data.manifest.json --split models/splits/… --workers 15 …
# Images are not decoded there (sharp is left out): the cache must hold them.
set -eu
out=${1:?usage: bundle.sh OUT DATA_DIR [IMAGE_SIZE]}
data=${2:?usage: bundle.sh OUT DATA_DIR [IMAGE_SIZE]}
size=${3:-48}
esbuild=node_modules/.bin/esbuild
rm -rf "$out/pw" "$out/cache"
mkdir -p "$out/pw" "$out/cache/images"
cat > "$out/pw/sharp-stub.mjs" <<'STUB'
export default function sharp() {
  throw new Error('This training bundle cannot decode images: train from a dataset manifest whose prepared images are in the cache.');
}
STUB
banner="import { createRequire as __pwRequire } from 'node:module'; import { fileURLToPath as __pwPath } from 'node:url'; import { dirname as __pwDir } from 'node:path'; const require = __pwRequire(import.meta.url); const __filename = __pwPath(import.meta.url); const __dirname = __pwDir(__filename);"
for entry in src/learn/standalone.ts:standalone.js src/learn/parallel/worker.ts:worker.js; do
  "$esbuild" "${entry%%:*}" --bundle --platform=node --format=esm --target=node20 --log-level=warning \
    --alias:sharp="./$out/pw/sharp-stub.mjs" --banner:js="$banner" --outfile="$out/pw/${entry##*:}"
done
rm "$out/pw/sharp-stub.mjs"
echo '{ "type": "module" }' > "$out/pw/package.json"
cp node_modules/@tensorflow/tfjs-backend-wasm/dist/*.wasm "$out/pw/"
# The manifest, and the cache file that the learn library reads for this data and size.
PW_DATA="$data" PW_OUT="$out" PW_SIZE="$size" npx tsx --eval 'void (async () => {
  const { readDataset } = await import("./src/learn/dataset.ts");
  const { writeDatasetManifest } = await import("./src/learn/parallel/run.ts");
  const { loadImageTable } = await import("./src/learn/image-cache.ts");
  const { DEFAULT_PREPROCESS } = await import("./src/preprocess/prepare.ts");
  const { copyFileSync } = await import("node:fs");
  const { createHash } = await import("node:crypto");
  const dataset = await readDataset(process.env.PW_DATA);
  await writeDatasetManifest(process.env.PW_OUT + "/data.manifest.json", dataset);
  const size = Number(process.env.PW_SIZE);
  await loadImageTable(dataset.items, size, DEFAULT_PREPROCESS);
  // The cache key of image-cache.ts.
  const key = createHash("sha256").update(JSON.stringify({ v: 1, size, spec: DEFAULT_PREPROCESS, items: dataset.items.map((i) => [i.rel, i.bytes]) })).digest("hex").slice(0, 24);
  const file = key + "-" + size + ".u8";
  copyFileSync(".cache/images/" + file, process.env.PW_OUT + "/cache/images/" + file);
  console.log("bundle: " + dataset.items.length + " images, cache " + file);
})();'
xz -6 -f "$out/data.manifest.json"
xz -9 -T0 -f "$out"/cache/images/*.u8
if [ "${WITH_NODE:-0}" = 1 ]; then xz -9 -T0 -c "$(command -v node)" > "$out/node.xz"; fi
cat > "$out/run.sh" <<'RUN'
#!/bin/sh
# Unpack this bundle (once per host) and run the learn CLI with its arguments.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=${PW_BUNDLE_TMP:-${TMPDIR:-/tmp}/plankwatch-bundle}
mkdir -p "$work/cache/images"
node=node
if [ -f "$here/node.xz" ]; then
  [ -x "$work/node" ] || { xz -dc "$here/node.xz" > "$work/node.part" && chmod +x "$work/node.part" && mv "$work/node.part" "$work/node"; }
  node="$work/node"
fi
for f in "$here"/cache/images/*.xz; do
  u="$work/cache/images/$(basename "$f" .xz)"
  [ -f "$u" ] || { xz -dc "$f" > "$u.part" && mv "$u.part" "$u"; }
done
[ -f "$here/data.manifest.json" ] || xz -dkc "$here/data.manifest.json.xz" > "$here/data.manifest.json"
PLANKWATCH_CACHE_DIR=${PLANKWATCH_CACHE_DIR:-$work/cache} exec "$node" "$here/pw/standalone.js" "$@"
RUN
chmod +x "$out/run.sh"
du -sh "$out"
