// `fomm-convert animate`'s resize (converter/media/resize.py: scikit-image's resize with
// its defaults, anti-aliasing on when shrinking) and its 8-bit conversions, in float64
// in the same order of operations, so the page feeds the models the frames animate does.

const SIGMA_EPS = 1e-15;  // scipy.ndimage.gaussian_filter skips smaller sigmas
const TRUNCATE = 4;       // its default truncation, in sigmas

// scipy.ndimage's 'mirror' boundary (d c b | a b c d | c b a), repeated as needed.
function mirror(index, n) {
  if (n === 1) return 0;
  const period = 2 * n - 2;
  const i = ((index % period) + period) % period;
  return i >= n ? period - i : i;
}

const cache = new Map();

/**
 * One axis of the resize as taps: for each output sample, the input columns (increasing)
 * and their weights: a Gaussian of sigma max(0, (nIn / nOut - 1) / 2) cut at 4 sigma,
 * then linear interpolation at (o + 0.5) * nIn / nOut - 0.5, both with the mirror
 * boundary; the weights of a column summed in the order resize.py's np.add.at does.
 */
export function resizeTaps(nIn, nOut) {
  const key = `${nIn}:${nOut}`;
  if (cache.has(key)) return cache.get(key);
  const factor = nIn / nOut;
  const sigma = Math.max(0, (factor - 1) / 2);
  let taps = [0], kernel = [1];
  if (sigma > SIGMA_EPS) {
    const radius = Math.floor(TRUNCATE * sigma + 0.5);
    taps = [];
    for (let t = -radius; t <= radius; t++) taps.push(t);
    kernel = taps.map((t) => Math.exp(-0.5 / sigma ** 2 * (t * t)));
    const sum = kernel.reduce((a, b) => a + b, 0);
    kernel = kernel.map((k) => k / sum);
  }
  const rows = [];
  for (let o = 0; o < nOut; o++) {
    const coord = (o + 0.5) * factor - 0.5;
    const left = Math.floor(coord);
    const frac = coord - left;
    const weights = new Map();  // column -> weight, in accumulation order
    for (const [position, weight] of [[left, 1 - frac], [left + 1, frac]]) {
      const p = mirror(position, nIn);
      taps.forEach((t, i) => {
        const column = mirror(p + t, nIn);
        weights.set(column, (weights.get(column) ?? 0) + weight * kernel[i]);
      });
    }
    const columns = [...weights.keys()].filter((c) => weights.get(c) !== 0).sort((a, b) => a - b);
    rows.push({columns, weights: columns.map((c) => weights.get(c))});
  }
  cache.set(key, rows);
  return rows;
}

/**
 * An RGBA image ({data: Uint8ClampedArray, width, height}, as getImageData gives it)
 * resized to (height, width) as animate resizes a picture or a frame: Float32Array of
 * height * width * 3 RGB values in [0, 1] (alpha dropped after resizing, as animate does;
 * it counts in the clipping range only where it is not opaque).
 */
export function resizeImage(image, height, width) {
  const {data, width: w, height: h} = image;
  const out = new Float32Array(height * width * 3);
  let low = 255, high = 0, opaque = true;
  for (let i = 0; i < data.length; i += 4) {
    for (let c = 0; c < 3; c++) {
      low = Math.min(low, data[i + c]);
      high = Math.max(high, data[i + c]);
    }
    if (data[i + 3] !== 255) opaque = false;
  }
  if (!opaque) {
    for (let i = 3; i < data.length; i += 4) {
      low = Math.min(low, data[i]);
      high = Math.max(high, data[i]);
    }
  }
  if (h === height && w === width) {  // zoom by exactly 1: no filter, no clipping
    for (let p = 0; p < h * w; p++) {
      for (let c = 0; c < 3; c++) out[p * 3 + c] = data[p * 4 + c] / 255;
    }
    return out;
  }
  // Rows first (axis 0), the uint8 values converted to float64 as they are taken.
  const rowTaps = resizeTaps(h, height);
  const rowsPass = new Float64Array(height * w * 3);
  for (let o = 0; o < height; o++) {
    const {columns, weights} = rowTaps[o];
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = (data[(columns[0] * w + x) * 4 + c] / 255) * weights[0];
        for (let t = 1; t < columns.length; t++) {
          sum += (data[(columns[t] * w + x) * 4 + c] / 255) * weights[t];
        }
        rowsPass[(o * w + x) * 3 + c] = sum;
      }
    }
  }
  const colTaps = resizeTaps(w, width);
  const lo = low / 255, hi = high / 255;
  for (let y = 0; y < height; y++) {
    for (let o = 0; o < width; o++) {
      const {columns, weights} = colTaps[o];
      for (let c = 0; c < 3; c++) {
        let sum = rowsPass[(y * w + columns[0]) * 3 + c] * weights[0];
        for (let t = 1; t < columns.length; t++) {
          sum += rowsPass[(y * w + columns[t]) * 3 + c] * weights[t];
        }
        out[(y * width + o) * 3 + c] = Math.min(Math.max(sum, lo), hi);
      }
    }
  }
  return out;
}

// numpy's rint: halves round to even.
function rint(x) {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** A model frame (float32 RGB in [0, 1], HWC) as RGBA bytes: rint(x * 255) clipped, as
 * converter/media/pixels.py's to_uint8 (skimage's img_as_ubyte). */
export function toRgba(frame, height, width, out = new Uint8ClampedArray(height * width * 4)) {
  for (let p = 0; p < height * width; p++) {
    for (let c = 0; c < 3; c++) {
      out[p * 4 + c] = Math.min(Math.max(rint(frame[p * 3 + c] * 255), 0), 255);
    }
    out[p * 4 + 3] = 255;
  }
  return out;
}
