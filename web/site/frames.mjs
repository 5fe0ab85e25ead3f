// Pictures and driving frames as RGBA pixels ({data, width, height}): a picture decoded
// without colour conversion, every frame of a video file in order (seeked one by one, so a
// run is the same every time), or the webcam's latest frame.
import {PageError} from './models.mjs';

function pixels(source, width, height) {
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d', {willReadFrequently: true});
  context.drawImage(source, 0, 0, width, height);
  return context.getImageData(0, 0, width, height);
}

/** A picture file's pixels as stored (no colour management, alpha not premultiplied), its
 * EXIF orientation applied, as `fomm-convert animate` reads it (converter/media/images.py). */
export async function decodePicture(blob, name) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, {colorSpaceConversion: 'none',
                                            premultiplyAlpha: 'none',
                                            imageOrientation: 'from-image'});
  } catch {
    throw new PageError(`${name}: cannot be decoded as a picture (use a PNG or JPEG file)`);
  }
  try {
    return pixels(bitmap, bitmap.width, bitmap.height);
  } finally {
    bitmap.close();
  }
}

function once(target, event) {
  return new Promise((resolve) => target.addEventListener(event, resolve, {once: true}));
}

// The video element must be in the document for its frames to be decoded.
function videoElement() {
  const video = document.createElement('video');
  video.muted = true;
  video.playsInline = true;
  video.className = 'decoder';
  document.body.append(video);
  return video;
}

/** The displayed frame of a video element if it is stamped after `after` (microseconds):
 * {image, timestamp, duration}; null if it is not; undefined while the element has none
 * to give (just after a seek, or under load, it may briefly have none). */
function grab(video, after = -Infinity) {
  if (video.readyState < HTMLMediaElement.HAVE_CURRENT_DATA) return undefined;
  let frame;
  try {
    frame = new VideoFrame(video);
  } catch (err) {
    if (err.name === 'InvalidStateError') return undefined;
    throw err;
  }
  try {
    if (frame.timestamp <= after) return null;
    return {image: pixels(frame, video.videoWidth, video.videoHeight), timestamp: frame.timestamp,
            duration: frame.duration ?? 1e6 / 30};  // a frame without one: 30 fps
  } finally {
    frame.close();
  }
}

const SETTLE_MS = 250;  // how long a seek may take to show its frame after 'seeked'
const NO_FRAME_MS = 10000;  // how long an element may have no frame at all

/**
 * Every frame of a video file, in order: each one seeked to (its start + half its
 * length), never played, so no frame is skipped or shown twice and every run is the same.
 * 'seeked' may fire while the old frame is still shown: a seek's frame is the first one
 * stamped after the previous frame (waited for up to SETTLE_MS; a frame longer than the
 * one before it moves the seek on by half a frame).
 */
export async function* videoFrames(blob, name) {
  const video = videoElement();
  // A blob URL is seekable everywhere (a server without Range requests is not).
  video.src = URL.createObjectURL(blob);
  try {
    const loaded = await Promise.race([once(video, 'loadeddata').then(() => true),
                                       once(video, 'error').then(() => false)]);
    if (!loaded) {
      throw new PageError(`${name}: this browser cannot decode the video ` +
                          `(${video.error?.message || 'unknown format'}); try a WebM or MP4 file`);
    }
    // After the frame stamped `after` (microseconds; -Infinity: any), at `seconds`, or null.
    const seek = async (seconds, after) => {
      video.currentTime = seconds;
      await once(video, 'seeked');
      for (const start = performance.now(); ;) {
        const frame = grab(video, after);
        if (frame) return frame;
        const waited = performance.now() - start;
        if (frame === null && waited > SETTLE_MS) return null;
        if (waited > NO_FRAME_MS) {
          throw new PageError(`${name}: the browser shows no frame at ${seconds.toFixed(3)} s`);
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    };
    let frame = await seek(0, -Infinity);
    yield frame;
    // A recording without a duration ends after ten frame lengths with no new frame.
    for (let t = (frame.timestamp + 1.5 * frame.duration) / 1e6, misses = 0;
         t < video.duration && misses < 20;) {
      const next = await seek(t, frame.timestamp);
      if (next) {
        frame = next;
        yield frame;
        t = (frame.timestamp + 1.5 * frame.duration) / 1e6;
        misses = 0;
      } else {
        t += frame.duration / 2e6;
        misses++;
      }
    }
  } finally {
    URL.revokeObjectURL(video.src);
    video.remove();
  }
}

/** The webcam: {frame() -> the next new frame, stop()}. */
export async function openCamera() {
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({video: true, audio: false});
  } catch (err) {
    if (err.name === 'NotAllowedError') {
      throw new PageError('The camera was refused: allow it for this page in the browser ' +
                          '(the camera icon in the address bar), then press "Webcam" again');
    }
    if (err.name === 'NotFoundError') throw new PageError('No camera was found on this device');
    throw new PageError(`The camera cannot be opened (${err.message})`);
  }
  const video = videoElement();
  video.srcObject = stream;
  await video.play();
  let last = -1;
  return {
    async frame() {
      // A camera that stamps no new time is taken as it is after 200 ms.
      for (let tries = 0; ; tries++) {
        const found = grab(video, tries >= 40 ? -Infinity : last);
        if (found) {
          last = found.timestamp;
          return found;
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
    stop() {
      stream.getTracks().forEach((track) => track.stop());
      video.remove();
    },
  };
}
