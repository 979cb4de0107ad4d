// Exposure limits timed by the display's frames, and measured from the frame that put the images on screen to
// the frame that took them off. participant.js reveals the images in a requestAnimationFrame callback once they
// have decoded and passes that callback's timestamp here (performance.now()'s clock: the time the frame began).
// A change made in a rAF callback reaches the screen a frame later as a rule, but now and then two to four
// frames later (a reveal after a page load mostly, when the image is first rasterised; a hide on a busy page):
// timed from the callbacks alone, such images were on screen 33-67 ms less, or more, than recorded (issue 24;
// tests/turing/test_exposure_on_screen.py measures it from Chromium's screencast). So both ends come from
// Element Timing (an elementtiming attribute: renderTime, when a paint was presented; a new entry for each
// image src, and for each "Time is up" note, made afresh at each hide since an element's text is reported
// once). Its times are coarse (4 ms steps in Chromium) and lie within about 10 ms of the screencast's, so each
// end is counted in whole frames after its callback and laid on the rAF clock, which is exact. Browsers without
// Element Timing (Firefox, Safari) count each end one frame after its callback. A setTimeout can fire mid-frame
// or late on a busy page, and a background tab stops frames altogether; what was achieved is sent with the
// vote, so that the report can flag exposures off by more than a frame.
window.TuringExposure = (function () {
  "use strict";

  const runs = new Set();
  if (window.PerformanceObserver && (PerformanceObserver.supportedEntryTypes || []).includes("element")) {
    new PerformanceObserver(function (list) {
      list.getEntries().forEach(function (entry) {
        runs.forEach(function (run) { run.painted(entry); });
      });
    }).observe({ type: "element", buffered: true });
  }

  // Times images (figure's, revealed in the frame whose rAF timestamp is revealed) and, with ms, hides them on
  // the frame nearest ms on screen; returns the run, whose .achieved is set once they are hidden (and corrected
  // if their paint is reported after that). With mask, a field of random grey noise covers the place of the
  // images (HYPE-time).
  function start(figure, images, ms, mask, revealed) {
    const run = { achieved: null, stopped: false };
    // When Element Timing saw each image's paint presented, and the "Time is up" note's that replaces them.
    const paints = new Map();
    let hidePaint = null;
    let frame = null;
    let hiding = null;
    let note = null;

    // A change made in the callback at time `callback` reached the screen in the frame after it, or in a later
    // one if a paint was seen then: that frame's start on the rAF clock.
    function presented(callback, renderTimes) {
      let frames = 1;
      renderTimes.forEach(function (renderTime) {
        frames = Math.max(frames, Math.round((renderTime - callback) / frame));
      });
      return callback + frames * frame;
    }

    function record() {
      const shown = presented(revealed, Array.from(paints.values()));
      const hidden = presented(hiding, hidePaint === null ? [] : [hidePaint]);
      run.achieved = Math.round(hidden - shown);
    }

    run.painted = function (entry) {
      const image = images.find(function (each) { return each === entry.element && each.src === entry.url; });
      // renderTime is 0 for a cross-origin image served without Timing-Allow-Origin.
      if (image && entry.renderTime >= revealed) {
        paints.set(image, entry.renderTime);
      } else if (note !== null && entry.element === note && entry.renderTime >= hiding) {
        hidePaint = entry.renderTime;
      } else {
        return;
      }
      if (hiding !== null) {
        record();
      }
    };

    let previous = revealed;
    function tick(now) {
      if (run.stopped) {
        return;
      }
      const interval = Math.min(Math.max(now - previous, 1), 100);
      previous = now;
      // The display's frame: the shortest interval seen, as a busy frame runs long.
      frame = Math.min(frame || interval, interval);
      // Hide on the frame nearest the limit: this one, unless the next would be closer.
      if (now + frame - presented(revealed, Array.from(paints.values())) + interval / 2 >= ms) {
        // Element Timing reports an element's text once: a fresh note for each hide.
        const old = figure.querySelector(".expired-note");
        if (old) {
          note = old.cloneNode(true);
          note.setAttribute("elementtiming", "hide");
          old.replaceWith(note);
        }
        figure.classList.add("expired");
        if (mask) {
          showMask(figure);
        }
        hiding = now;
        record();
      } else {
        requestAnimationFrame(tick);
      }
    }
    if (ms) {
      runs.add(run);
      requestAnimationFrame(tick);
    }
    return run;
  }

  function stop(run) {
    if (run) {
      run.stopped = true;
      runs.delete(run);
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
