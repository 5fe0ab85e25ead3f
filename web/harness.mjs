// The harness loop: config from the server, models opened once, then jobs long-polled
// from /api/job and answered on /api/result. A message is binary: a little-endian uint32
// header length, the JSON header {id, model, signature, tensors: [{name, shape}]}, zero
// padding to 4 bytes, then the float32 data of the tensors in order.
import {openModels} from './fomm-runtime.mjs';

// Where each runtime's wasm files are in this folder (npm ci --prefix web).
const WASM = {
  'onnx-web': './node_modules/onnxruntime-web/dist/',
  'onnx-webgpu': './node_modules/onnxruntime-web/dist/',
  'litert-js': './node_modules/@litertjs/core/wasm/',
  'litert-js-webgpu': './node_modules/@litertjs/core/wasm/',
};

// Every POST goes through one chain, so the server sees them in the page's order (the
// console lines of a compile before its ready report).
let chain = Promise.resolve();
function post(path, body) {
  chain = chain.then(() => fetch(path, {method: 'POST', body})).catch(() => {});
  return chain;
}

function report(message) {
  return post('/api/error', JSON.stringify({message: String(message)}));
}

// Console output goes to the server (LiteRT and onnxruntime log placement there).
for (const level of ['log', 'info', 'warn', 'error', 'debug']) {
  const original = console[level].bind(console);
  console[level] = (...args) => {
    original(...args);
    post('/api/log', JSON.stringify({level, text: args.map(String).join(' ')}));
  };
}

function decode(buffer) {
  const view = new DataView(buffer);
  const length = view.getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, length)));
  let offset = 4 + Math.ceil(length / 4) * 4;
  const tensors = {};
  for (const {name, shape} of header.tensors) {
    const size = shape.reduce((a, b) => a * b, 1);
    tensors[name] = {data: new Float32Array(buffer.slice(offset, offset + 4 * size)), shape};
    offset += 4 * size;
  }
  return {header, tensors};
}

function encode(header, tensors) {
  const names = Object.keys(tensors);
  const json = new TextEncoder().encode(JSON.stringify(
    {...header, tensors: names.map((name) => ({name, shape: tensors[name].shape}))}));
  const start = 4 + Math.ceil(json.length / 4) * 4;
  const size = names.reduce((n, name) => n + tensors[name].data.length, 0);
  const buffer = new ArrayBuffer(start + 4 * size);
  new DataView(buffer).setUint32(0, json.length, true);
  new Uint8Array(buffer, 4, json.length).set(json);
  let offset = start;
  for (const name of names) {
    new Float32Array(buffer, offset, tensors[name].data.length).set(tensors[name].data);
    offset += 4 * tensors[name].data.length;
  }
  return buffer;
}

async function main() {
  const config = await (await fetch('/api/config')).json();
  let models;
  try {
    models = await openModels({...config, baseUrl: '/bundle/', wasmUrl: WASM[config.runtime]});
  } catch (err) {
    await report(`load failed: ${err.message ?? err}`);
    return;
  }
  // Which wasm binaries the runtime chose (SIMD, relaxed SIMD, threaded builds differ by
  // file), so that a caller can check what really runs.
  const wasm = performance.getEntriesByType('resource').map((e) => e.name)
    .filter((name) => name.endsWith('.wasm')).map((name) => name.split('/').pop());
  await post('/api/ready', JSON.stringify({accelerator: models.accelerator, wasm,
                                           crossOriginIsolated: self.crossOriginIsolated}));
  for (;;) {
    const response = await fetch('/api/job');
    if (response.status === 204) continue;  // the long poll timed out: ask again
    if (response.status === 410) break;  // the server is closing
    const {header, tensors} = decode(await response.arrayBuffer());
    try {
      const start = performance.now();
      const outputs = await models.run(header.model, header.signature, tensors);
      await post('/api/result', encode({id: header.id, ms: performance.now() - start}, outputs));
    } catch (err) {
      await post('/api/result', encode({id: header.id, error: String(err.message ?? err)}, {}));
    }
  }
  await models.close();
}

main().catch((err) => report(`harness: ${err.message ?? err}`));
