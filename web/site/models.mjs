// The site's models: each file fetched once (a progress bar's worth of bytes), checked
// against the sha256 the bundle's manifest gives it (site.json), then opened from memory
// with fomm-runtime.mjs. A WebGPU runtime that is missing or fails falls back to wasm.

// Each WebGPU runtime's wasm fallback (the same files on the CPU).
const WASM_FALLBACK = {'litert-js-webgpu': 'litert-js', 'onnx-webgpu': 'onnx-web'};
import {openModels} from './fomm-runtime.mjs';

// Where `fomm-convert web` puts each runtime's wasm files.
const WASM = {
  'onnx-web': './runtime/onnxruntime-web/dist/',
  'onnx-webgpu': './runtime/onnxruntime-web/dist/',
  'litert-js': './runtime/@litertjs/core/wasm/',
  'litert-js-webgpu': './runtime/@litertjs/core/wasm/',
};

/** An error meant for the person at the page: its message says what happened and what to do. */
export class PageError extends Error {}

function hex(buffer) {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

async function fetchChecked(path, expected, onBytes) {
  let response;
  try {
    response = await fetch(path);
  } catch (err) {
    throw new PageError(`${path}: cannot be fetched (${err.message}); ` +
                        "is the site's server running?");
  }
  if (!response.ok) throw new PageError(`${path}: the server answered HTTP ${response.status}`);
  const reader = response.body.getReader();
  const chunks = [];
  for (;;) {
    const {done, value} = await reader.read();
    if (done) break;
    chunks.push(value);
    onBytes(value.length);
  }
  const blob = new Blob(chunks);
  const digest = hex(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()));
  if (digest !== expected.sha256) {
    throw new PageError(`${path} fails its sha256 check (the bundle's manifest says ` +
                        `${expected.sha256.slice(0, 12)}…, the file is ` +
                        `${digest.slice(0, 12)}…): it is damaged or not this bundle's; ` +
                        'write the site again');
  }
  return blob;
}

/** The runtime to use: `wanted` if the browser can run it, else the fallback and why. */
export async function chooseRuntime(site, wanted) {
  const runtime = wanted || site.runtimes[0];
  if (!site.runtimes.includes(runtime)) {
    throw new PageError(`backend=${runtime}: this site holds the ${site.format} files, which ` +
                        `run on ${site.runtimes.join(' or ')}`);
  }
  if (WASM_FALLBACK[runtime] && !(navigator.gpu && await navigator.gpu.requestAdapter())) {
    return {runtime: WASM_FALLBACK[runtime],
            notice: 'This browser has no WebGPU: running on wasm (the CPU) instead.'};
  }
  return {runtime, notice: null};
}

/**
 * Opens the site's models for `runtime`, verified; onProgress(fraction, text).
 * Returns fomm-runtime's models object, plus `runtime` and `notice` if it fell back.
 */
export async function loadModels(site, runtime, onProgress) {
  if (!globalThis.crypto?.subtle) {
    throw new PageError('this page must be served from https or 127.0.0.1 (it checks the ' +
                        'model files with crypto.subtle, which other origins do not have)');
  }
  const paths = [...new Set([...Object.values(site.files).flatMap((sigs) => Object.values(sigs)),
                             ...site.external_data.map((e) => e.url)])];
  const total = paths.reduce((n, p) => n + site.sha256[p].size, 0);
  let received = 0;
  const urls = {};
  try {
    for (const path of paths) {
      const blob = await fetchChecked(path, site.sha256[path], (n) => {
        received += n;
        onProgress(0.9 * received / total, `downloading ${path}`);
      });
      urls[path] = URL.createObjectURL(blob);
    }
    const files = Object.fromEntries(Object.entries(site.files).map(([model, sigs]) =>
      [model, Object.fromEntries(Object.entries(sigs).map(([sig, path]) => [sig, urls[path]]))]));
    const externalData = site.external_data.map(({path, url}) => ({path, url: urls[url]}));
    const threads = self.crossOriginIsolated ? Math.min(navigator.hardwareConcurrency || 1, 4) : 1;
    const open = (name) => openModels({
      runtime: name, baseUrl: './', wasmUrl: WASM[name], files, externalData, threads,
      onProgress: ({loaded, total: count}) => onProgress(0.9 + 0.1 * loaded / count,
                                                         `compiling ${loaded} of ${count}`)});
    try {
      return Object.assign(await open(runtime), {runtime, notice: null});
    } catch (err) {
      const fallback = WASM_FALLBACK[runtime];
      if (!fallback) throw err;
      if (fallback === 'litert-js') {
        const litert = await import('@litertjs/core');
        try { litert.unloadLiteRt(); } catch { /* it failed before loading */ }
      }
      const notice = `WebGPU could not run the models (${err.message}): running on wasm ` +
                     '(the CPU) instead.';
      return Object.assign(await open(fallback), {runtime: fallback, notice});
    }
  } finally {
    Object.values(urls).forEach((url) => URL.revokeObjectURL(url));
  }
}
