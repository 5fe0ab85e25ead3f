// Keypoints drawn on a frame as converter/animation/drawing.py draws them: a disc per
// keypoint in its Tableau 10 colour (its group's), at size * (kp + 1) / 2, radius 5 px per 256.

const PALETTE = [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40],
                 [148, 103, 189], [140, 86, 75], [227, 119, 194], [127, 127, 127],
                 [188, 189, 34], [23, 190, 207]];

// Python's round(): halves to even.
function roundHalfEven(x) {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Draws the (K, 2) keypoints `value` ((x, y) in [-1, 1]) into RGBA bytes, in place; each
 * `group` keypoints in a row share a colour (TPSMM: a spline's 5 control points). */
export function drawKeypoints(rgba, height, width, value, group = 1) {
  const radius = Math.max(1, roundHalfEven(5 * Math.min(height, width) / 256));
  for (let k = 0; k < value.length / 2; k++) {
    const cx = width * (value[2 * k] + 1) / 2, cy = height * (value[2 * k + 1] + 1) / 2;
    const colour = PALETTE[Math.floor(k / group) % PALETTE.length];
    const paint = (row, col) => {
      const at = (row * width + col) * 4;
      rgba[at] = colour[0]; rgba[at + 1] = colour[1]; rgba[at + 2] = colour[2];
    };
    const rows = [Math.max(0, Math.floor(cy - radius)), Math.min(height - 1, cy + radius)];
    const cols = [Math.max(0, Math.floor(cx - radius)), Math.min(width - 1, cx + radius)];
    for (let row = rows[0]; row <= rows[1]; row++) {
      for (let col = cols[0]; col <= cols[1]; col++) {
        if ((row - cy) ** 2 + (col - cx) ** 2 < radius ** 2) paint(row, col);
      }
    }
    const row = Math.floor(cy), col = Math.floor(cx);
    if (row >= 0 && row < height && col >= 0 && col < width) paint(row, col);
  }
  return rgba;
}
