// Exposure limits timed by the display's frames, and measured: the image counts as shown from the frame that
// first paints it (the requestAnimationFrame after its load) to the frame that hides it. A setTimeout can fire
// mid-frame or late on a busy page, and a background tab stops frames altogether; what was achieved is sent
// with the vote, so that the report can flag exposures off by more than a frame.
window.TuringExposure = (function () {
  "use strict";

  // Hide figure's images ms after the frame that paints them; returns the run, whose .achieved is set when
  // they are hidden. With mask, a field of random grey noise covers the place of the images (HYPE-time).
  function start(figure, ms, mask) {
    const run = { achieved: null, stopped: false };
    if (!ms) {
      return run;
    }
    requestAnimationFrame(function (painted) {
      let previous = painted;
      function tick(now) {
        if (run.stopped) {
          return;
        }
        const frame = Math.min(Math.max(now - previous, 1), 100);
        previous = now;
        // Hide on the frame nearest the limit: this one, unless the next would be closer.
        if (now - painted + frame / 2 >= ms) {
          figure.classList.add("expired");
          if (mask) {
            showMask(figure);
          }
          run.achieved = Math.round(now - painted);
        } else {
          requestAnimationFrame(tick);
        }
      }
      requestAnimationFrame(tick);
    });
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
