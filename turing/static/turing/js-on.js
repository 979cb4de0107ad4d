// Loaded before the first paint, not deferred: with the class set, the CSS-only exposure limit (for pages without
// JavaScript) stays off, and participant.js times the exposure instead.
document.documentElement.classList.add("js");
