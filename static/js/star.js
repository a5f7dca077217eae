// A favourite star is a submit button of the page's hidden #favourites form (so it works
// without JavaScript); with htmx, which posts it and swaps the new star in, the form must not
// also be submitted. htmx's own listener on the button runs first.
document.addEventListener("click", (event) => {
  if (event.target.closest(".star-button[hx-post]")) event.preventDefault();
});
