// Runs a fomm-convert bundle's models in a browser with onnxruntime-web or LiteRT.js.
//
// One module for every page that runs our files (the Python browser backends' harness, the
// web demo). The runtimes are imported by their package names ('onnxruntime-web',
// '@litertjs/core'): the page maps them (an import map, or a bundler) to the copies it
// serves, never a CDN. Tensors cross this API as {data: Float32Array, shape: number[]}.

export const RUNTIMES = ['onnx-web', 'onnx-webgpu', 'litert-js', 'litert-js-webgpu'];

/**
 * Load every model file of a bundle for one runtime.
 *
 * runtime: 'onnx-web' | 'onnx-webgpu' | 'litert-js' | 'litert-js-webgpu'
 * baseUrl: where the bundle's paths are resolved (its root folder)
 * wasmUrl: the runtime's wasm folder (onnxruntime-web/dist/ or @litertjs/core/wasm/)
 * files: {model: {signature: path}}; ONNX has a file per signature, TFLite one file per
 *   model holding all its signatures (the static files: batch 1)
 * externalData: [{path, url}]: the ONNX files' external weights (path as the files name
 *   it, url under baseUrl); fetched once, handed to every session that needs it
 * threads: wasm threads (needs a cross-origin isolated page for more than 1)
 * onProgress({loaded, total, file}): after each file
 * Returns {runtime, accelerator, run(model, signature, inputs) -> outputs, close()}.
 */
export async function openModels({runtime, baseUrl, wasmUrl, files, externalData = [],
                                  threads, onProgress = () => {}}) {
  if (!RUNTIMES.includes(runtime)) {
    throw new Error(`unknown runtime ${runtime} (known: ${RUNTIMES.join(', ')})`);
  }
  const base = new URL(baseUrl, location.href);
  const open = runtime.startsWith('onnx-') ? openOnnx : openLiteRt;
  return open({runtime, base, wasmUrl: new URL(wasmUrl, location.href).href, files,
               externalData, threads, onProgress});
}

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

function entries(files) {
  return Object.entries(files).flatMap(([model, sigs]) =>
    Object.entries(sigs).map(([signature, path]) => ({model, signature, path})));
}

function checkShapes(where, inputs) {
  for (const [name, {data, shape}] of Object.entries(inputs)) {
    const size = shape.reduce((a, b) => a * b, 1);
    if (!(data instanceof Float32Array) || data.length !== size) {
      throw new Error(`${where}: input ${name} must be a Float32Array of ${size} values`);
    }
  }
}

// ------------------------------------------------------------------ onnxruntime-web
// onnx-webgpu: the WebGPU execution provider (its own build, 'onnxruntime-web/webgpu'); ops
// it has no kernel for run on its wasm CPU provider, as onnxruntime places them.
async function openOnnx({runtime, base, wasmUrl, files, externalData, threads, onProgress}) {
  const webgpu = runtime === 'onnx-webgpu';
  if (webgpu && !navigator.gpu) throw new Error(`${runtime}: this browser has no WebGPU`);
  const ort = await import(webgpu ? 'onnxruntime-web/webgpu' : 'onnxruntime-web');
  ort.env.wasm.wasmPaths = wasmUrl;
  if (threads) ort.env.wasm.numThreads = threads;
  const weights = await Promise.all(externalData.map(async ({path, url}) =>
    ({path, data: await fetchBytes(new URL(url, base))})));
  const list = entries(files);
  const sessions = {};
  let loaded = 0;
  for (const {model, signature, path} of list) {
    const url = new URL(path, base);
    const bytes = await fetchBytes(url);
    try {
      // Every session gets the weights: a file that names none ignores them.
      sessions[`${model}/${signature}`] = await ort.InferenceSession.create(bytes, {
        executionProviders: [webgpu ? 'webgpu' : 'wasm'], externalData: weights});
    } catch (err) {
      throw new Error(`${path}: onnxruntime-web cannot load it (${err.message ?? err})`);
    }
    onProgress({loaded: ++loaded, total: list.length, file: path});
  }
  return {
    runtime,
    accelerator: {backend: webgpu ? 'webgpu' : 'wasm', threads: ort.env.wasm.numThreads},
    async run(model, signature, inputs) {
      const session = sessions[`${model}/${signature}`];
      if (!session) throw new Error(`${runtime}: no model ${model} ${signature}`);
      checkShapes(`${model} ${signature}`, inputs);
      const feeds = Object.fromEntries(Object.entries(inputs).map(
        ([name, {data, shape}]) => [name, new ort.Tensor('float32', data, shape)]));
      const results = await session.run(feeds);
      const outputs = {};
      for (const [name, tensor] of Object.entries(results)) {
        outputs[name] = {data: tensor.data, shape: Array.from(tensor.dims)};
        tensor.dispose();
      }
      return outputs;
    },
    async close() {
      await Promise.all(Object.values(sessions).map((s) => s.release()));
    },
  };
}

// ------------------------------------------------------------------ LiteRT.js
async function openLiteRt({runtime, base, wasmUrl, files, threads, onProgress}) {
  const litert = await import('@litertjs/core');
  const webgpu = runtime === 'litert-js-webgpu';
  if (webgpu && !navigator.gpu) throw new Error(`${runtime}: this browser has no WebGPU`);
  // JSPI lets a WebGPU model run the ops the GPU refuses on wasm (else all falls back to
  // wasm); that build is single-threaded, so threads only apply to the wasm runtime.
  const threaded = !webgpu && threads > 1 && self.crossOriginIsolated;
  if (!webgpu && threads > 1 && !threaded) {
    throw new Error(`${runtime}: ${threads} threads need a cross-origin isolated page`);
  }
  await litert.loadLiteRt(wasmUrl, webgpu ? {jspi: true} : {threads: threaded});
  const accelerator = webgpu ? 'webgpu' : 'wasm';
  const options = {accelerator, ...(threaded ? {cpuOptions: {numThreads: threads}} : {})};
  const paths = [...new Set(entries(files).map((e) => e.path))];
  const compiled = {};
  let loaded = 0;
  for (const path of paths) {
    const bytes = await fetchBytes(new URL(path, base));
    try {
      compiled[path] = await litert.loadAndCompile(bytes, options);
    } catch (err) {
      // An abort gives no reason; one is the wasm heap at its cap (2 GiB in every build of
      // @litertjs/core 2.5.3: tpsmm-ted's generator, docs/runtimes.md), which its size shows.
      const bytes = litert.getGlobalLiteRt?.()?.liteRtWasm?.HEAPU8?.length;
      const heap = bytes ? `; wasm heap ${Math.round(bytes / 2 ** 20)} MiB` : "";
      throw new Error(`${path}: LiteRT.js cannot compile it for ${accelerator} ` +
                      `(${err.message ?? err}${heap})`);
    }
    onProgress({loaded: ++loaded, total: paths.length, file: path});
  }
  const info = {backend: accelerator, models: {},
                threads: litert.getGlobalLiteRt().liteRtWasm.getThreadCount()};
  for (const [model, sigs] of Object.entries(files)) {
    const path = Object.values(sigs)[0];
    info.models[model] = {file: path, isFullyAccelerated: compiled[path].isFullyAccelerated};
  }
  return {
    runtime,
    accelerator: info,
    async run(model, signature, inputs) {
      const path = files[model]?.[signature];
      if (!path) throw new Error(`${runtime}: no model ${model} ${signature}`);
      checkShapes(`${model} ${signature}`, inputs);
      const tensors = Object.fromEntries(Object.entries(inputs).map(
        ([name, {data, shape}]) => [name, new litert.Tensor(data, shape)]));
      let results;
      try {
        results = await compiled[path].run(signature, tensors);
      } finally {
        for (const t of Object.values(tensors)) t.delete();
      }
      const outputs = {};
      for (const [name, tensor] of Object.entries(results)) {
        const data = await tensor.data();  // copies it off the GPU when it is there
        outputs[name] = {data: new Float32Array(data),
                         shape: Array.from(tensor.type.layout.dimensions)};
        tensor.delete();
      }
      return outputs;
    },
    async close() {
      for (const model of Object.values(compiled)) model.delete();
      litert.unloadLiteRt();
    },
  };
}
