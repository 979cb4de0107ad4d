// The MTurk finish page's form hands the assignment back to MTurk as soon as the page is shown; its button is
// there for a browser without JavaScript.
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  document.querySelectorAll("form[data-auto-submit]").forEach(function (form) { form.submit(); });
});
