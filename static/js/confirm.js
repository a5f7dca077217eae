// Forms marked data-confirm="Question?" ask before they are sent (no inline handlers, for CSP).
document.addEventListener("submit", (event) => {
  const question = event.target.dataset ? event.target.dataset.confirm : undefined;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
