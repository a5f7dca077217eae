// Job and batch pages: when what the page follows ends, say so in the tab title and, if the
// creator allowed it (asked only from the button, never on load), with a notification.
(function () {
  const selector = "[data-ended]";
  const button = document.getElementById("notify");
  const state = document.getElementById("notify-state");
  const supported = "Notification" in window;

  function offer() {
    const live = document.querySelector(selector);
    if (!button || !supported || !live) return;
    button.hidden = live.dataset.ended === "1" || Notification.permission !== "default";
    if (live.dataset.ended === "1") { state.textContent = ""; return; }
    if (Notification.permission === "granted") state.textContent = "You'll get a notification when it's ready.";
  }

  if (button) {
    button.addEventListener("click", async () => {
      const answer = await Notification.requestPermission();
      button.hidden = true;
      state.textContent = answer === "granted"
        ? "You'll get a notification when it's ready."
        : "Notifications are off for this site in your browser.";
    });
  }

  let wasRunning = (document.querySelector(selector) || {}).dataset?.ended === "0";
  document.body.addEventListener("htmx:afterSettle", () => {
    const live = document.querySelector(selector);
    if (!live) return;
    if (live.dataset.ended === "1" && wasRunning) {
      const title = live.dataset.endedTitle;
      document.title = `${title} · Studio`;
      if (supported && Notification.permission === "granted") {
        new Notification(title, { body: document.querySelector("h1").textContent.trim(), tag: location.pathname });
      }
    }
    wasRunning = live.dataset.ended === "0";
    offer();
  });
  offer();
})();
