// Drag clips to reorder a sequence: a dropped clip moves in the list, and the plan's form
// is sent (htmx, on its change event) so the server recomputes the length. The arrow
// buttons do the same from the keyboard without this script.
(() => {
  let dragged = null;
  document.addEventListener("dragstart", (event) => {
    dragged = event.target.closest(".part");
    if (dragged) event.dataTransfer.effectAllowed = "move";
  });
  document.addEventListener("dragover", (event) => {
    if (dragged && event.target.closest(".part")) event.preventDefault();
  });
  document.addEventListener("drop", (event) => {
    const target = event.target.closest(".part");
    if (!dragged || !target || target === dragged) return;
    event.preventDefault();
    const list = target.parentNode;
    const items = Array.from(list.children);
    const after = items.indexOf(dragged) < items.indexOf(target);
    list.insertBefore(dragged, after ? target.nextSibling : target);
    // Each clip keeps the transition into it; the first one has none.
    const form = list.closest("form");
    dragged = null;
    form.dispatchEvent(new Event("change", { bubbles: true }));
  });
})();
