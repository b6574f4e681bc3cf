// Launch-link generator: shows the shareable /VM_start link for what the
// form currently says. Without JavaScript the form still launches.
(function () {
  "use strict";
  const form = document.getElementById("launch-form");
  const out = document.getElementById("share-link");
  const box = document.getElementById("share");
  if (!form || !out || !box) return;
  function update() {
    const url = new URL(out.dataset.base, window.location.href);
    const giturl = form.elements.giturl.value.trim();
    const ref = form.elements.ref.value.trim();
    const urlpath = form.elements.urlpath.value.trim();
    if (giturl) url.searchParams.set("giturl", giturl);
    if (ref) url.searchParams.set("ref", ref);
    if (urlpath) url.searchParams.set("urlpath", urlpath);
    out.value = url.toString();
    box.hidden = false;
  }
  form.addEventListener("input", update);
  out.addEventListener("focus", function () { out.select(); });
  update();
})();
