// The library's selection (Shift-click ticks a range) and hover previews. Event delegation on
// the document, so tiles htmx adds later (scrolling, filters) behave the same.
// Elements are looked up as needed: the back button can bring the page's body in anew.
(() => {
  const picks = () => Array.from(document.querySelectorAll(".library .pick"));
  let last = null;

  const update = () => {
    const bar = document.getElementById("selection");
    if (!bar) return;
    const n = picks().filter((box) => box.checked).length;
    bar.querySelector(".selected-count").textContent =
      n ? `${n} clip${n === 1 ? "" : "s"} selected` : "No clips selected";
    bar.querySelectorAll("[data-needs-selection], [data-clear-selection]").forEach((b) => {
      b.disabled = n === 0;
    });
  };

  document.addEventListener("click", (event) => {
    const box = event.target.closest(".library .pick");
    if (!box) return;
    if (event.shiftKey && last && last !== box) {
      const all = picks();
      const [from, to] = [all.indexOf(last), all.indexOf(box)].sort((a, b) => a - b);
      if (from >= 0) all.slice(from, to + 1).forEach((b) => { b.checked = box.checked; });
    }
    last = box;
    update();
  });
  document.addEventListener("change", (event) => {
    if (event.target.closest(".library .pick")) update();
  });
  document.addEventListener("click", (event) => {
    if (!event.target.closest("[data-clear-selection]")) return;
    picks().forEach((b) => { b.checked = false; });
    last = null;
    update();
  });
  // Tiles swapped in or out (filters, scrolling) change what is selected.
  document.addEventListener("htmx:afterSettle", update);
  document.addEventListener("htmx:historyRestore", update);
  update();

  // Hover or keyboard focus plays a muted preview: the clip itself, fetched by byte range
  // (preload=metadata, then only what plays), over its poster; leaving stops and removes it.
  const start = (link) => {
    if (!link || link.querySelector("video")) return;
    const video = document.createElement("video");
    video.muted = true;
    video.loop = true;
    video.playsInline = true;
    video.preload = "metadata";
    video.setAttribute("aria-hidden", "true");
    video.src = link.dataset.preview;
    link.appendChild(video);
    video.play().catch(() => video.remove());
  };
  const stop = (link) => {
    const video = link && link.querySelector("video");
    if (!video) return;
    video.pause();
    video.removeAttribute("src");
    video.load();
    video.remove();
  };
  document.addEventListener("pointerover", (e) => start(e.target.closest("[data-preview]")));
  document.addEventListener("pointerout", (e) => {
    const link = e.target.closest("[data-preview]");
    if (link && !link.contains(e.relatedTarget)) stop(link);
  });
  document.addEventListener("focusin", (e) => start(e.target.closest("[data-preview]")));
  document.addEventListener("focusout", (e) => stop(e.target.closest("[data-preview]")));
})();
