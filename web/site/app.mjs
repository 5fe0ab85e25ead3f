// The page: a source picture animated by a driving video file or the webcam, in the
// browser, on the bundle's own model files (site.json says which, and the model family).
// The loop is `fomm-convert animate`'s (converter/animation/loop.py): the source encoded
// and its keypoints detected once; per driving frame the detector, the family's
// normalisation (families.mjs) with the initial frame's keypoints, and generate, all at
// batch 1.
//
// For tests and links the page starts from its address:
//   ?source=URL&driving=URL|camera[&backend=litert-js|litert-js-webgpu|onnx-web|onnx-webgpu]
//   [&relative=0|1][&adapt_scale=0|1]  (FOMM)  [&mode=relative|standard|avd]  (TPSMM)
// <canvas id="result"> counts its frames in data-frames-rendered, says data-state
// (loading, ready, running, done, stopped, error) and holds the motion origin in
// data-initial-kp; it fires a 'frame' event after each frame is drawn.
import {drawKeypoints} from './draw.mjs';
import {FAMILIES} from './families.mjs';
import {decodePicture, openCamera, videoFrames} from './frames.mjs';
import {PageError, chooseRuntime, loadModels} from './models.mjs';
import {resizeImage, toRgba} from './resize.mjs';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const result = $('result');

let site, family, models, current = null, resetRequested = false, recorder = null;

function show(id, text) {
  $(id).textContent = text ?? '';
  $(id).hidden = !text;
}

function fail(err) {
  const text = err instanceof PageError ? err.message
    : `Something went wrong: ${err.message ?? err}`;
  show('error', text);
  result.dataset.state = 'error';
  result.dataset.error = text;
  console.error(err);
}

// ---------------------------------------------------------------- tensors
function image(data) {
  const [h, w] = site.frame_shape;
  return {data, shape: [1, h, w, 3]};
}

// ---------------------------------------------------------------- panels
function paint(canvas, rgba) {
  const [h, w] = site.frame_shape;
  canvas.getContext('2d').putImageData(new ImageData(rgba, w, h), 0, 0);
}

function paintFrame(canvas, frame, kp) {
  const [h, w] = site.frame_shape;
  const rgba = toRgba(frame, h, w);
  if (kp) drawKeypoints(rgba, h, w, kp.value.data, site.keypoint_group);
  paint(canvas, rgba);
}

// ---------------------------------------------------------------- the run
class Run {
  constructor(source, driving) {
    this.source = source;  // {blob, name}
    this.driving = driving;  // {blob, name} or 'camera'
    this.stopped = false;
    this.times = [];
  }

  async start() {
    const [h, w] = site.frame_shape;
    result.dataset.state = 'running';
    result.dataset.framesRendered = '0';
    delete result.dataset.initialKp;
    show('error', null);
    const picture = resizeImage(await decodePicture(this.source.blob, this.source.name), h, w);
    const sourceImage = image(picture);
    this.kpSource = await models.run('kp_detector', 'serving_default', {image: sourceImage});
    this.encoded = family.encodedInputs(
      await models.run('generator', 'encode_source', {source_image: sourceImage}), sourceImage);
    paintFrame($('source'), picture, this.kpSource);
    this.initial = null;
    startRecording();
    try {
      if (this.driving === 'camera') {
        await this.animateCamera();
      } else {
        for await (const frame of videoFrames(this.driving.blob, this.driving.name)) {
          if (this.stopped) break;
          await this.step(frame.image);
        }
      }
      result.dataset.state = this.stopped ? 'stopped' : 'done';
    } finally {
      stopRecording();
    }
  }

  async animateCamera() {
    const camera = await openCamera();
    $('reset').disabled = false;
    try {
      while (!this.stopped) await this.step((await camera.frame()).image);
    } finally {
      camera.stop();
      $('reset').disabled = true;
    }
  }

  async step(pixels) {
    const [h, w] = site.frame_shape;
    const driving = resizeImage(pixels, h, w);
    const kp = await models.run('kp_detector', 'serving_default', {image: image(driving)});
    if (this.initial === null || resetRequested) {
      this.initial = kp;
      resetRequested = false;
      result.dataset.initialKp = JSON.stringify(Array.from(kp.value.data, (v) => +v.toFixed(6)));
    }
    const norm = await family.normalise(models, site, $, kp, this.initial, this.kpSource);
    const {prediction} = await models.run('generator', 'generate', {
      ...this.encoded, ...family.keypoints(site, norm, this.kpSource)});
    if (this.stopped) return;
    paintFrame($('driving'), driving, kp);
    paint(result, toRgba(prediction.data, h, w));
    recorder?.stream.getVideoTracks()[0].requestFrame();
    const index = Number(result.dataset.framesRendered);
    result.dataset.framesRendered = String(index + 1);
    result.dispatchEvent(new CustomEvent('frame', {detail: {index}}));
    const now = performance.now();
    this.times = [...this.times.slice(-9), now];  // the last 10 frames
    if (this.times.length > 1) {
      const fps = (this.times.length - 1) * 1000 / (now - this.times[0]);
      show('fps', `${fps.toFixed(1)} frames/s ·`);
    }
  }
}

// The run of the latest inputs. Runs are chained: each waits for the one before it
// (stopped) to end, and one superseded while it waited never starts.
function restart() {
  const previous = current;
  if (previous) previous.stopped = true;
  const {source, driving} = inputs;
  const run = models && source && driving ? new Run(source, driving) : null;
  current = run;
  if (!run) return;
  run.done = (async () => {
    await previous?.done;
    if (run !== current) return;
    $('inputs').textContent = `source: ${source.name}; driving: ` +
      (driving === 'camera' ? 'the webcam' : driving.name);
    $('stop').disabled = false;
    await run.start().catch(fail);
    if (run === current) $('stop').disabled = true;
  })();
}

// ---------------------------------------------------------------- recording (WebM)
function startRecording() {
  if (!$('record').checked || typeof MediaRecorder === 'undefined') return;
  const stream = result.captureStream(0);
  recorder = new MediaRecorder(stream, {mimeType: 'video/webm'});
  const chunks = [];
  recorder.ondataavailable = (e) => chunks.push(e.data);
  recorder.onstop = () => {
    const link = $('download');
    URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(new Blob(chunks, {type: 'video/webm'}));
    link.hidden = false;
  };
  recorder.start();
}

function stopRecording() {
  if (recorder?.state === 'recording') recorder.stop();
  recorder = null;
}

// ---------------------------------------------------------------- inputs
const inputs = {source: null, driving: null};

async function fromUrl(name) {
  const url = new URL(params.get(name), location.href);
  if (url.origin !== location.origin) {
    throw new PageError(`${name}=${params.get(name)}: only this site's own addresses can be ` +
                        'used (put the file beside index.html)');
  }
  const response = await fetch(url);
  if (!response.ok) throw new PageError(`${name}=${params.get(name)}: HTTP ${response.status}`);
  return {blob: await response.blob(), name: url.pathname.split('/').pop()};
}

function choose(kind, file) {
  inputs[kind] = kind === 'driving' && file === 'camera' ? 'camera' : {blob: file, name: file.name};
  restart();
}

function wireInputs() {
  for (const kind of ['source', 'driving']) {
    $(`${kind}-file`).addEventListener('change', (e) => {
      if (e.target.files[0]) choose(kind, e.target.files[0]);
    });
  }
  $('camera').addEventListener('click', () => choose('driving', 'camera'));
  $('reset').addEventListener('click', () => { resetRequested = true; });
  $('stop').addEventListener('click', () => { if (current) current.stopped = true; });
  const zone = $('panels');
  zone.addEventListener('dragover', (e) => e.preventDefault());
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    for (const file of e.dataTransfer.files) {
      choose(file.type.startsWith('video/') ? 'driving' : 'source', file);
    }
  });
}

// ---------------------------------------------------------------- start
function describe(accelerator) {
  const parts = [accelerator.backend === 'webgpu' ? 'WebGPU' : 'wasm (CPU)'];
  if (accelerator.backend !== 'webgpu' && accelerator.threads) {
    parts.push(`${accelerator.threads} thread(s)`);
  }
  for (const [model, info] of Object.entries(accelerator.models ?? {})) {
    if (accelerator.backend === 'webgpu') {
      parts.push(`${model} ${info.isFullyAccelerated ? 'fully on the GPU'
                                                     : 'partly on the GPU (the rest on wasm)'}`);
    }
  }
  return parts.join(', ');
}

// The manifest's licence (licence.py): official weights' licence and attribution, or
// (synthetic weights, no licence) the architecture's credit.
function licenceText({weights, license, license_url: url, attribution, architecture}) {
  return license ? `Weights ${weights}; licence ${license} (${url}). ${attribution}`
                 : `Weights ${weights}. Architecture: ${architecture}`;
}

async function main() {
  result.dataset.state = 'loading';
  result.dataset.framesRendered = '0';
  wireInputs();
  const response = await fetch('site.json');
  if (!response.ok) {
    throw new PageError('site.json is missing: this folder was not written by `fomm-convert web`');
  }
  site = await response.json();
  family = FAMILIES[site.family ?? 'fomm'];  // sites written before families: FOMM's
  if (!family) {
    throw new PageError(`site.json: family ${site.family} is not one this page runs ` +
                        `(${Object.keys(FAMILIES).join(', ')}); write the site again`);
  }
  $(family.controls).hidden = false;
  family.setup($, params, site, PageError);
  const [h, w] = site.frame_shape;
  for (const id of ['source', 'driving', 'result']) Object.assign($(id), {height: h, width: w});
  show('synthetic', site.synthetic
    ? 'These weights are SYNTHETIC (seeded random numbers, not a trained model): the ' +
      'pipeline is real, the pictures are not meant to look like anything.'
    : null);
  $('licence').textContent = licenceText(site.licence);
  $('about').textContent = `${site.dataset} ${site.version}, ${site.format} files, ${w}x${h}`;
  const chosen = await chooseRuntime(site, params.get('backend'));
  models = await loadModels(site, chosen.runtime, (fraction, text) => {
    $('progress').value = fraction;
    $('progress-text').textContent = text;
  });
  $('loading').hidden = true;
  show('notice', models.notice ?? chosen.notice);
  result.dataset.accelerator = JSON.stringify(models.accelerator);
  result.dataset.runtime = models.runtime;
  show('accelerator', `${models.runtime}: ${describe(models.accelerator)}`);
  result.dataset.state = 'ready';
  $('controls').disabled = false;
  if (params.has('source')) inputs.source = await fromUrl('source');
  if (params.get('driving') === 'camera') inputs.driving = 'camera';
  else if (params.has('driving')) inputs.driving = await fromUrl('driving');
  restart();
}

main().catch(fail);
