#!/bin/sh
# A self-contained training bundle for a host that has no node_modules and no image files:
#   OUT/pw/standalone.js   the learn commands (train, evaluate) in one ESM file
#   OUT/pw/worker.js       the data-parallel training worker, beside it
#   OUT/pw/*.wasm          the tfjs wasm backend binaries (found beside the bundle)
#   OUT/data.manifest.json the dataset list (paths, labels, sizes, fingerprint): pass it as --data
#   OUT/cache/images/*.u8  the prepared images for that list (set PLANKWATCH_CACHE_DIR=OUT/cache)
# Usage: src/learn/parallel/bundle.sh OUT [DATA_DIR] [IMAGE_SIZE]
# (run from the repository root after a training run here has filled .cache/images at IMAGE_SIZE).
# Images are not decoded there (sharp is left out): the cache must hold them.
set -eu
out=${1:?usage: bundle.sh OUT [DATA_DIR] [IMAGE_SIZE]}
data=${2:-../shared/data/ndsb}
size=${3:-48}
esbuild=node_modules/.bin/esbuild
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
# The manifest and the cache file that the learn library would read for this data and size.
PW_DATA="$data" PW_OUT="$out" PW_SIZE="$size" npx tsx --eval 'void (async () => {
  const { readDataset } = await import("./src/learn/dataset.ts");
  const { writeDatasetManifest } = await import("./src/learn/parallel/run.ts");
  const { loadImageTable } = await import("./src/learn/image-cache.ts");
  const { DEFAULT_PREPROCESS } = await import("./src/preprocess/prepare.ts");
  const { copyFileSync } = await import("node:fs");
  const dataset = await readDataset(process.env.PW_DATA);
  await writeDatasetManifest(process.env.PW_OUT + "/data.manifest.json", dataset);
  const size = Number(process.env.PW_SIZE);
  await loadImageTable(dataset.items, size, DEFAULT_PREPROCESS);
  // The cache key of image-cache.ts.
  const { createHash } = await import("node:crypto");
  const key = createHash("sha256").update(JSON.stringify({ v: 1, size, spec: DEFAULT_PREPROCESS, items: dataset.items.map((i) => [i.rel, i.bytes]) })).digest("hex").slice(0, 24);
  const file = key + "-" + size + ".u8";
  copyFileSync(".cache/images/" + file, process.env.PW_OUT + "/cache/images/" + file);
  console.log("bundle: " + dataset.items.length + " images, cache " + file);
})();'
