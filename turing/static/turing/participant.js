// Trial pages work as plain forms; this script makes them quicker and measures response times.
// It sends each vote with fetch() and, instead of loading a new page, swaps in the next image, preloaded while
// the participant looked at the current one unless its exposure is limited: then the vote's reply is the first
// to name it, and the server starts its clock when it serves it. Keys: R for "real", G for
// "generated", the Left arrow for the first button and the Right arrow for the second (their order is drawn
// per participant), while focus is in the answer area or once the participant has turned on keys for the whole
// page (the keydown listener at the end).
(function () {
  "use strict";

  const LETTERS = { r: "real", R: "real", g: "generated", G: "generated" };
  // The "anywhere on the page" switch, kept for this tab while the participant goes from trial to trial.
  const KEYS_ANYWHERE = "turing.keysAnywhere";
  // Nobody judges a photo within this long of seeing it: a tap that soon is the second half of a double tap
  // (or a key held down), and must not answer the image that has just replaced the one tapped.
  const MIN_ANSWER_MS = 400;
  // Retries of a vote that met a lost connection or a server without its database: 1 s, 2 s, 4 s ... 15 s.
  const RETRY_FIRST_MS = 1000;
  const RETRY_MAX_MS = 15000;

  function start() {
    const dataElement = document.getElementById("trial-data");
    if (!dataElement) {
      if (document.querySelector("form.join")) {
        // A new participation (the next person at a kiosk, too) starts with the switch off.
        sessionStorage.removeItem(KEYS_ANYWHERE);
      }
      return;
    }
    let trial = JSON.parse(dataElement.textContent);
    const form = document.querySelector("form.vote");
    const answering = document.querySelector(".answering");
    const figure = document.querySelector(".stimulus");
    // One image, or a pair (2afc): shown, timed and swapped together.
    const images = Array.from(figure.querySelectorAll("img"));
    const progress = document.querySelector(".progress");
    const status = document.querySelector(".status");
    const feedback = document.querySelector(".feedback");
    const keysAnywhere = answering.querySelector(".keys-anywhere input");
    const csrfToken = form.querySelector("[name=csrfmiddlewaretoken]").value;
    const [firstButton, secondButton] = form.querySelectorAll("button.answer");
    const keys = Object.assign({ ArrowLeft: firstButton.value, ArrowRight: secondButton.value }, LETTERS);
    // The title reads "<progress> · <study title>"; the progress part follows the trial.
    const titleRest = document.title.slice(document.title.indexOf(" · "));

    let shownAt = null;
    let exposure = null;
    let busy = false;
    let preloaded = null;
    let continueFeedback = null;

    function preload(urls) {
      return (urls || []).map(function (url) {
        const next = new Image();
        next.src = url;
        return next;
      });
    }

    // Response time runs from the frame that puts the images on screen, as does the exposure limit (exposure.js).
    // They stay hidden (participant.css) until that frame, after a page load as after a swap: revealed in a
    // requestAnimationFrame callback once decoded, whose timestamp starts both clocks. Shown by the browser as
    // soon as they loaded, they were painted up to 100 ms before the clock started (issue 24).
    function reveal() {
      Promise.all(images.map(function (image) { return image.decode(); })).then(function () {
        requestAnimationFrame(function (frame) {
          shownAt = frame;
          TuringExposure.clearMask(figure);
          figure.classList.remove("expired");
          figure.classList.add("shown");
          exposure = TuringExposure.start(figure, images, trial.exposure_ms, trial.mask, frame);
        });
      }, function () {
        // Not loaded: the images' error listener reloads the page.
      });
    }

    function begin() {
      if (trial.expired) {
        // Reloaded after the exposure limit ran out: the server sent no image, only the answer buttons.
        figure.classList.add("expired");
        shownAt = performance.now();
      } else {
        reveal();
      }
    }

    async function show(next) {
      // A preloaded image, decoded before the swap, keeps the gap between the two images short.
      await Promise.all(preloaded.map(function (next) { return next.decode().catch(function () {}); }));
      trial = next;
      shownAt = null;
      TuringExposure.stop(exposure);
      // The previous image goes; a mask or "Time is up" stays until the next image is revealed.
      figure.classList.remove("shown");
      images.forEach(function (image, index) {
        if (trial.expired) {
          image.removeAttribute("src");
        } else {
          image.src = trial.image_urls[index];
        }
      });
      form.action = trial.vote_url;
      progress.textContent = trial.progress;
      document.title = trial.progress + titleRest;
      preloaded = preload(trial.next_image_urls);
      begin();
    }

    function showFeedback(result) {
      const verdict = feedback.querySelector(".verdict");
      const truth = feedback.querySelector(".truth");
      feedback.querySelector(".practice-over").hidden = !result.last;
      answering.hidden = true;
      feedback.hidden = false;
      feedback.querySelector(".continue").focus();
      // The verdict goes into the status region a frame after the region is shown: a screen reader announces
      // a change to a live region it already knows, not the text of one that has just appeared.
      requestAnimationFrame(function () {
        verdict.textContent = result.verdict;
        // HTML that the server escaped (answers.practice_feedback): a pair's sides are named as the page lays them out.
        truth.innerHTML = result.truth;
      });
      return new Promise(function (resolve) {
        continueFeedback = function () {
          continueFeedback = null;
          feedback.hidden = true;
          verdict.textContent = "";
          truth.textContent = "";
          answering.hidden = false;
          // The area, not a button: a button with focus is drawn ringed and answers Enter, favouring its answer.
          answering.focus();
          resolve();
        };
      });
    }

    // How large the image was on screen, in CSS pixels (a pair's first: two_afc.css gives both one size), sent
    // with the vote beside the device-pixel ratio. Null on a page reloaded after the exposure ran out: it showed
    // no image.
    function imageSize() {
      if (trial.expired) {
        return null;
      }
      const box = images[0].getBoundingClientRect();
      return { width: Math.round(box.width), height: Math.round(box.height) };
    }

    async function vote(answer) {
      // shownAt is null until the image is on screen: no answer to an image nobody has seen.
      if (busy || continueFeedback || shownAt === null || performance.now() - shownAt < MIN_ANSWER_MS) {
        return;
      }
      busy = true;
      form.classList.add("busy");
      const body = new URLSearchParams({ answer: answer });
      body.set("response_ms", String(Math.round(performance.now() - shownAt)));
      if (exposure && exposure.achieved !== null) {
        body.set("achieved_exposure_ms", String(exposure.achieved));
      }
      body.set("viewport_width", String(window.innerWidth));
      body.set("viewport_height", String(window.innerHeight));
      body.set("device_pixel_ratio", String(window.devicePixelRatio));
      const size = imageSize();
      if (size) {
        body.set("image_css_width", String(size.width));
        body.set("image_css_height", String(size.height));
      }
      // A lost connection or a server without its database (503 with retry) is retried with the same answer,
      // backing off up to RETRY_MAX_MS: the server records a repeated answer once, so an answer stored
      // before the failure is accepted as the repeat it is.
      let reply = null;
      for (let wait = RETRY_FIRST_MS; reply === null; wait = Math.min(2 * wait, RETRY_MAX_MS)) {
        let response = null;
        try {
          response = await fetch(trial.vote_url, {
            method: "POST",
            body: body,
            headers: { "X-CSRFToken": csrfToken, Accept: "application/json" },
            credentials: "same-origin",
          });
        } catch (error) {
          response = null;
        }
        const isJson = response && (response.headers.get("Content-Type") || "").startsWith("application/json");
        const answer = isJson ? await response.json() : null;
        if (response && response.ok && answer) {
          reply = answer;
        } else if (response && !(response.status === 503 && answer && answer.retry)) {
          // Refused (already answered, study closed, session lost): the server's page says why.
          window.location.assign((answer && answer.redirect) || window.location.href);
          return;
        } else {
          status.textContent = "Connection problem — retrying…";
          await new Promise(function (resolve) { setTimeout(resolve, wait); });
        }
      }
      status.textContent = "";
      if (reply.feedback) {
        // A timed next image is fetched only after Continue: its clocks, the server's and this page's, start then.
        await showFeedback(reply.feedback);
      }
      if (reply.next) {
        await show(reply.next);
      } else {
        window.location.assign(reply.redirect);
        return;
      }
      busy = false;
      form.classList.remove("busy");
    }

    // Kiosk mode: a trial page left alone hands the device to the next person.
    const leave = document.querySelector("form.kiosk-leave");
    let idleTimer = null;
    function stillHere() {
      if (leave) {
        clearTimeout(idleTimer);
        idleTimer = setTimeout(function () { leave.submit(); }, Number(leave.dataset.idleMs));
      }
    }
    stillHere();
    ["pointerdown", "keydown"].forEach(function (type) { document.addEventListener(type, stillHere); });

    images.forEach(function (image) {
      image.addEventListener("error", function () {
        // Without its image a trial cannot be judged; the server's page loads it afresh.
        status.textContent = "The image did not load. Reloading…";
        setTimeout(function () { window.location.reload(); }, 2000);
      });
    });
    begin();
    preloaded = preload(trial.next_image_urls);

    keysAnywhere.checked = sessionStorage.getItem(KEYS_ANYWHERE) === "on";
    keysAnywhere.addEventListener("change", function () {
      sessionStorage.setItem(KEYS_ANYWHERE, keysAnywhere.checked ? "on" : "off");
    });

    form.addEventListener("submit", function (event) {
      if (event.submitter && event.submitter.value) {
        event.preventDefault();
        vote(event.submitter.value);
      }
    });
    feedback.querySelector(".continue").addEventListener("click", function () {
      if (continueFeedback) {
        continueFeedback();
      }
    });
    document.addEventListener("keydown", function (event) {
      // Practice feedback: Continue has focus, and Enter or Space presses it as any button's.
      if (event.altKey || event.ctrlKey || event.metaKey || event.repeat || continueFeedback) {
        return;
      }
      // A protocol may name its own keys (2afc: the arrows for left and right).
      const answer = (trial.keys || keys)[event.key];
      const focused = document.activeElement;
      if (!answer || !(answering.contains(focused) || keysAnywhere.checked)) {
        return;
      }
      event.preventDefault();
      // With focus on an answer button only that button's own answer: a key typed while "Generated" has focus
      // never records "real".
      if (focused.matches("button.answer") && focused.value !== answer) {
        const other = form.querySelector("button.answer[value='" + answer + "']").textContent;
        status.textContent = "“" + focused.textContent + "” has focus: move to “" + other + "” to answer that.";
        return;
      }
      vote(answer);
    });
  }

  document.addEventListener("DOMContentLoaded", start);
})();
