// The live dashboard: fetches its figures (staff:dashboard_live) every few seconds and puts them in place,
// unless paused or the tab is hidden. Nothing else on the page changes, so focus and scrolling stay put.
(function () {
  "use strict";

  function start() {
    const live = document.getElementById("live");
    const pause = document.querySelector(".live-pause");
    const state = document.querySelector(".live-state");
    let timer = null;

    function paused() {
      return pause.getAttribute("aria-pressed") === "true";
    }

    function schedule() {
      clearTimeout(timer);
      timer = paused() ? null : setTimeout(update, Number(live.dataset.refreshMs));
    }

    // The table's box, which scrolls sideways on a narrow screen, keeps its position, and the keyboard focus if it
    // had it, through the swap.
    function swap(html) {
      const box = live.querySelector(".table-scroll");
      const left = box ? box.scrollLeft : 0;
      const focused = box !== null && document.activeElement === box;
      live.innerHTML = html;
      const fresh = live.querySelector(".table-scroll");
      if (fresh) {
        fresh.scrollLeft = left;
        if (focused) {
          fresh.focus({ preventScroll: true });
        }
      }
    }

    async function update() {
      if (!document.hidden) {
        let response = null;
        try {
          response = await fetch(live.dataset.url, { credentials: "same-origin", headers: { Accept: "text/html" } });
        } catch (error) {
          response = null;
        }
        // A redirect is the login page (the session ended): its HTML must not land in the dashboard.
        if (response && response.ok && !response.redirected) {
          swap(await response.text());
          state.textContent = "";
        } else {
          state.textContent = response && response.redirected
            ? "Updates stopped: log in again and reload this page."
            : "Could not update; trying again.";
          if (response && response.redirected) {
            return;
          }
        }
      }
      schedule();
    }

    pause.hidden = false;
    pause.addEventListener("click", function () {
      pause.setAttribute("aria-pressed", paused() ? "false" : "true");
      state.textContent = paused() ? "Updates paused." : "Updates resumed.";
      if (paused()) {
        clearTimeout(timer);
      } else {
        update();
      }
    });
    schedule();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
