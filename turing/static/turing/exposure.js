// Exposure limits timed by the display's frames, and measured. participant.js reveals the images in a
// requestAnimationFrame callback once they have decoded, and passes that callback's timestamp here: the images
// are on screen from that frame to the frame whose callback hides them, so the exposure is counted, and
// measured, between the two rAF timestamps (DOMHighResTimeStamps on performance.now()'s clock: the time the
// frame began; Chromium presents a frame's changes a frame or so later). A setTimeout can fire mid-frame or late
// on a busy page, and a background tab stops frames altogether; what was achieved is sent with the vote, so that
// the report can flag exposures off by more than a frame.
// Checked against Chromium's screencast (tests/turing/test_exposure_on_screen.py): the hide is on screen one
// frame after its callback every time, the reveal one frame after, now and then two (a busy frame), so the
// image can be on screen a frame less than measured, never more. Element Timing (an elementtiming attribute)
// does give an image's paint time in Chromium, a new entry for each src, and sees those late reveals, but it
// is rounded to 8 ms there, and nothing gives the paint time of the hide: an exposure from one clock's reveal
// to another's hide would be off by their difference in latency, so both ends are rAF timestamps.
window.TuringExposure = (function () {
  "use strict";

  // Hide figure's images ms after the frame that revealed them (revealed: that frame's rAF timestamp); returns
  // the run, whose .achieved is set when they are hidden. With mask, a field of random grey noise covers the
  // place of the images (HYPE-time).
  function start(figure, ms, mask, revealed) {
    const run = { achieved: null, stopped: false };
    if (!ms) {
      return run;
    }
    let previous = revealed;
    function tick(now) {
      if (run.stopped) {
        return;
      }
      const frame = Math.min(Math.max(now - previous, 1), 100);
      previous = now;
      // Hide on the frame nearest the limit: this one, unless the next would be closer.
      if (now - revealed + frame / 2 >= ms) {
        figure.classList.add("expired");
        if (mask) {
          showMask(figure);
        }
        run.achieved = Math.round(now - revealed);
      } else {
        requestAnimationFrame(tick);
      }
    }
    requestAnimationFrame(tick);
    return run;
  }

  function stop(run) {
    if (run) {
      run.stopped = true;
    }
  }

  function showMask(figure) {
    const canvas = document.createElement("canvas");
    canvas.className = "noise-mask";
    canvas.width = 64;
    canvas.height = 64;
    const context = canvas.getContext("2d");
    const noise = context.createImageData(canvas.width, canvas.height);
    for (let i = 0; i < noise.data.length; i += 4) {
      const grey = Math.floor(Math.random() * 256);
      noise.data[i] = noise.data[i + 1] = noise.data[i + 2] = grey;
      noise.data[i + 3] = 255;
    }
    context.putImageData(noise, 0, 0);
    Object.assign(canvas.style, {
      position: "absolute", inset: "0", width: "100%", height: "100%", imageRendering: "pixelated", zIndex: "2",
    });
    figure.appendChild(canvas);
  }

  function clearMask(figure) {
    figure.querySelectorAll(".noise-mask").forEach(function (canvas) { canvas.remove(); });
  }

  return { start: start, stop: stop, clearMask: clearMask };
})();
