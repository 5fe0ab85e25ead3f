// Runs a fomm-convert bundle's models in a browser with onnxruntime-web or LiteRT.js.
//
// One module for every page that runs our files (the Python browser backends' harness, the
// web demo). The runtimes are imported by their package names ('onnxruntime-web',
// '@litertjs/core'): the page maps them with an import map to the copies it serves, never
// a CDN (LiteRT.js WebGPU also imports its module's resolved URL with a query, below).
// Tensors cross this API as {data: Float32Array, shape: number[]}.

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
// LiteRT.js 2.5.3 caps its wasm heap at 2 GiB in every build, and its WebGPU compile keeps
// about as much as each graph's weights there besides the file's bytes: tpsmm-ted's generator
// (478 MB; its generate and serving_default graphs each use 448 MiB of the weights) runs
// out compiling its third graph (docs/runtimes.md). So on WebGPU each signature of a file
// that has several is compiled from the file's bytes narrowed to that signature's graph:
// the first in the instance every file shares, each further one in a LiteRT.js instance of
// its own (its own heap; an instance costs 0.5-5 s to load on SwiftShader).
async function openLiteRt({runtime, base, wasmUrl, files, threads, onProgress}) {
  const webgpu = runtime === 'litert-js-webgpu';
  if (webgpu && !navigator.gpu) throw new Error(`${runtime}: this browser has no WebGPU`);
  // JSPI lets a WebGPU model run the ops the GPU refuses on wasm (else all falls back to
  // wasm); that build is single-threaded, so threads only apply to the wasm runtime.
  const threaded = !webgpu && threads > 1 && self.crossOriginIsolated;
  if (!webgpu && threads > 1 && !threaded) {
    throw new Error(`${runtime}: ${threads} threads need a cross-origin isolated page`);
  }
  const instances = [];
  const newInstance = async () => {
    // A module is evaluated once per URL: a query gives another copy, with its own heap.
    const litert = await import(instances.length
      ? `${import.meta.resolve('@litertjs/core')}?instance=${instances.length}`
      : '@litertjs/core');
    await litert.loadLiteRt(wasmUrl, webgpu ? {jspi: true} : {threads: threaded});
    instances.push(litert);
    return litert;
  };
  const accelerator = webgpu ? 'webgpu' : 'wasm';
  const options = {accelerator, ...(threaded ? {cpuOptions: {numThreads: threads}} : {})};
  const paths = [...new Set(entries(files).map((e) => e.path))];
  const compiled = {};  // {path: {signature ('' for the whole file): {litert, model}}}
  let loaded = 0;
  try {
    const shared = await newInstance();
    for (const path of paths) {
      const bytes = await fetchBytes(new URL(path, base));
      const parts = webgpu ? graphParts(path, bytes) : [];
      compiled[path] = {};
      for (const [i, {signature, narrow}] of
           (parts.length ? parts : [{signature: '', narrow: null}]).entries()) {
        const litert = i ? await newInstance() : shared;
        const restore = narrow ? narrow() : () => {};
        try {
          compiled[path][signature] = {litert, model: await litert.loadAndCompile(bytes, options)};
        } catch (err) {
          // An abort gives no reason; one is the wasm heap at its cap, which its size shows.
          const size = litert.getGlobalLiteRt?.()?.liteRtWasm?.HEAPU8?.length;
          const heap = size ? `; wasm heap ${Math.round(size / 2 ** 20)} MiB` : "";
          const which = signature ? ` ${signature}` : '';
          throw new Error(`${path}${which}: LiteRT.js cannot compile it for ${accelerator} ` +
                          `(${err.message ?? err}${heap})`);
        } finally {
          restore();
        }
      }
      onProgress({loaded: ++loaded, total: paths.length, file: path});
    }
  } catch (err) {
    unload(instances);
    throw err;
  }
  const info = {backend: accelerator, models: {},
                threads: instances[0].getGlobalLiteRt().liteRtWasm.getThreadCount()};
  for (const [model, sigs] of Object.entries(files)) {
    const path = Object.values(sigs)[0];
    info.models[model] = {file: path, isFullyAccelerated: Object.values(compiled[path])
      .every((part) => part.model.isFullyAccelerated)};
  }
  return {
    runtime,
    accelerator: info,
    async run(model, signature, inputs) {
      const path = files[model]?.[signature];
      if (!path) throw new Error(`${runtime}: no model ${model} ${signature}`);
      const {litert, model: compiledModel} = compiled[path][signature] ?? compiled[path][''];
      checkShapes(`${model} ${signature}`, inputs);
      const tensors = Object.fromEntries(Object.entries(inputs).map(
        ([name, {data, shape}]) => [name, new litert.Tensor(data, shape)]));
      let results;
      try {
        results = await compiledModel.run(signature, tensors);
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
      for (const parts of Object.values(compiled)) {
        for (const {model} of Object.values(parts)) model.delete();
      }
      unload(instances);
    },
  };
}

function unload(instances) {
  for (const litert of instances) {
    try {
      litert.unloadLiteRt();
    } catch { /* still loading: nothing of it to free */ }
  }
}

// ------------------------------------------------------------------ a file's graphs
// A .tflite file is a FlatBuffer (little-endian): the root table Model lists its subgraphs
// (field 2) and signature defs (field 7: key, field 2; subgraph index, field 4). Narrowing
// it to one signature rewrites five words in place: both lists cut to that one entry, the
// entry's subgraph index 0; restore() puts the file's bytes back. DataView checks every
// read and write against the file's end.

/** [{signature, narrow() -> restore()}] in subgraph order; [] for a file of one graph. */
function graphParts(path, bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    const model = table(view, view.getUint32(0, true));
    const subgraphs = vector(view, model, 2);
    const signatures = vector(view, model, 7);
    if (signatures.length < 2) return [];
    const defs = [];
    for (let i = 0; i < signatures.length; i++) {
      const def = table(view, element(view, signatures, i));
      const key = field(view, def, 2);
      const index = field(view, def, 4);
      const subgraph = index ? view.getUint32(index, true) : 0;
      if (!key || subgraph >= subgraphs.length) throw new Error(`signature ${i} is malformed`);
      const start = key + view.getUint32(key, true);
      const end = start + 4 + view.getUint32(start, true);
      if (end > bytes.length) throw new Error(`signature ${i}'s name runs past the end`);
      const name = new TextDecoder().decode(bytes.subarray(start + 4, end));
      defs.push({name, def, index, subgraph, at: i});
    }
    defs.sort((a, b) => a.subgraph - b.subgraph);
    return defs.map(({name, index, subgraph, at}) => ({
      signature: name,
      narrow: () => patch(view, [
        [subgraphs.at, 1], pointer(view, subgraphs, 0, element(view, subgraphs, subgraph)),
        [signatures.at, 1], pointer(view, signatures, 0, element(view, signatures, at)),
        ...(index ? [[index, 0]] : [])]),
    }));
  } catch (err) {
    throw new Error(`${path}: cannot read its signatures (${err.message})`);
  }
}

function table(view, pos) {
  const vtable = pos - view.getInt32(pos, true);
  return {pos, vtable, size: view.getUint16(vtable, true)};
}

function field(view, {pos, vtable, size}, id) {  // its position; 0 when absent
  const slot = 4 + 2 * id;
  const offset = slot + 2 <= size ? view.getUint16(vtable + slot, true) : 0;
  return offset ? pos + offset : 0;
}

function vector(view, owner, id) {  // {at: its length word, length}
  const pos = field(view, owner, id);
  if (!pos) return {at: 0, length: 0};
  const at = pos + view.getUint32(pos, true);
  return {at, length: view.getUint32(at, true)};
}

function element(view, {at}, i) {  // where a vector of tables' element i points
  const slot = at + 4 + 4 * i;
  return slot + view.getUint32(slot, true);
}

function pointer(view, {at}, i, target) {  // [slot, offset] making element i point at target
  const slot = at + 4 + 4 * i;
  if (target <= slot) throw new Error(`a table lies before the list that names it`);
  return [slot, target - slot];
}

function patch(view, writes) {
  const old = writes.map(([pos]) => [pos, view.getUint32(pos, true)]);
  for (const [pos, value] of writes) view.setUint32(pos, value, true);
  return () => old.forEach(([pos, value]) => view.setUint32(pos, value, true));
}
