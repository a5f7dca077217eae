// Create page: show the fields the chosen mode needs, and let the creator frame the image.
//
// The server checks and stores each still the moment it is chosen (htmx swaps in its preview).
// When the image does not fit the chosen aspect, a crop frame appears over it: drag it, or
// move it with the arrow keys (Shift for bigger steps). Its box, in the stored image's own
// pixels, goes with the form, and the server cuts exactly that box. "Pad" shows the padded
// image as the server makes it.
(function () {
  const form = document.getElementById("create-form");
  if (!form) return;
  const mode = form.querySelector("[name=mode]");
  // Read at the moment it is needed: a one-click fix or a provider switch may change it.
  const aspect = () => form.querySelector("[name=aspect]").value;
  const framing = document.getElementById("framing");
  const note = document.getElementById("framing-note");
  const crop = ["left", "top", "width", "height"].map((side) => form.querySelector(`[name=crop_${side}]`));
  let box = null; // {left, top, width, height} in image pixels

  function showModeFields() {
    form.querySelectorAll("[data-modes]").forEach((el) => {
      el.hidden = !el.dataset.modes.split(" ").includes(mode.value);
    });
    updateFraming();
  }

  function framer() {
    const slot = document.getElementById("image-slot");
    return mode.value !== "text" && slot ? slot.querySelector(".framer") : null;
  }

  function ratioFor(width, height) {
    if (aspect() === "16:9") return [16, 9];
    if (aspect() === "9:16") return [9, 16];
    return width >= height ? [16, 9] : [9, 16];
  }

  // The largest box of the ratio, centred: the same rule as images.centred_crop.
  function centred(width, height, [rw, rh]) {
    let w = width, h = Math.round((width * rh) / rw);
    if (h > height) { h = height; w = Math.round((height * rw) / rh); }
    return { left: Math.floor((width - w) / 2), top: Math.floor((height - h) / 2), width: w, height: h };
  }

  function chosenFraming() {
    const checked = framing.querySelector("input[type=radio]:checked");
    return checked ? checked.value : "crop";
  }

  function setCropInputs(b) {
    const values = b ? [b.left, b.top, b.width, b.height] : ["", "", "", ""];
    crop.forEach((input, i) => { input.value = values[i]; });
  }

  // The server's word on the framing (a crop frame it refused) stays in view until the next submit.
  const refused = () => Boolean(framing.querySelector(".error"));

  function updateFraming() {
    const el = framer();
    if (!el) { framing.hidden = !refused(); setCropInputs(null); return; }
    const width = +el.dataset.width, height = +el.dataset.height;
    const ratio = ratioFor(width, height);
    const frame = el.querySelector(".crop-frame");
    const padded = el.parentElement.querySelector("img.padded");
    const fits = Math.abs(width / height / (ratio[0] / ratio[1]) - 1) <= 0.01;
    framing.hidden = fits && !refused();
    note.textContent = fits ? "" :
      `The image is ${width}×${height}; ${ratio[0]}:${ratio[1]} needs a crop or padding.`;
    const pad = !fits && chosenFraming() === "pad";
    el.hidden = pad;
    padded.hidden = !pad;
    if (pad) padded.src = `${el.dataset.paddedUrl}?aspect=${encodeURIComponent(aspect())}`;
    frame.hidden = fits || pad;
    if (fits || pad) { setCropInputs(null); return; }
    const fresh = centred(width, height, ratio);
    const sent = crop.map((input) => parseInt(input.value, 10));
    if (sent.every(Number.isFinite) && Math.abs(sent[2] / sent[3] - fresh.width / fresh.height) < 0.01) {
      box = { left: sent[0], top: sent[1], width: sent[2], height: sent[3] };
    } else {
      box = fresh;
    }
    place(el, width, height);
  }

  function place(el, width, height) {
    box.left = Math.max(0, Math.min(width - box.width, Math.round(box.left)));
    box.top = Math.max(0, Math.min(height - box.height, Math.round(box.top)));
    const frame = el.querySelector(".crop-frame");
    const scale = el.querySelector("img.still").clientWidth / width;
    frame.style.left = `${box.left * scale}px`;
    frame.style.top = `${box.top * scale}px`;
    frame.style.width = `${box.width * scale}px`;
    frame.style.height = `${box.height * scale}px`;
    setCropInputs(box);
  }

  function enableDragging(el) {
    const frame = el.querySelector(".crop-frame");
    if (!frame || frame.dataset.ready) return;
    frame.dataset.ready = "1";
    const width = +el.dataset.width, height = +el.dataset.height;
    const scale = () => el.querySelector("img.still").clientWidth / width;
    let start = null;
    frame.addEventListener("pointerdown", (event) => {
      start = { x: event.clientX, y: event.clientY, left: box.left, top: box.top };
      frame.setPointerCapture(event.pointerId);
      event.preventDefault();
    });
    frame.addEventListener("pointermove", (event) => {
      if (!start) return;
      box.left = start.left + (event.clientX - start.x) / scale();
      box.top = start.top + (event.clientY - start.y) / scale();
      place(el, width, height);
    });
    const stop = () => { start = null; };
    frame.addEventListener("pointerup", stop);
    frame.addEventListener("pointercancel", stop);
    frame.addEventListener("keydown", (event) => {
      const step = Math.max(1, Math.round((event.shiftKey ? 0.1 : 0.01) * Math.max(width, height)));
      const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
      const move = moves[event.key];
      if (!move) return;
      box.left += move[0];
      box.top += move[1];
      place(el, width, height);
      event.preventDefault();
    });
    const img = el.querySelector("img.still");
    if (!img.complete) img.addEventListener("load", updateFraming, { once: true });
  }

  function afterSwap() {
    // The still is stored: do not send the file again with the form.
    form.querySelectorAll("input[type=file]").forEach((input) => {
      if (document.querySelector(`[name=${input.name}_id]`)) input.value = "";
    });
    setCropInputs(null);
    const el = framer();
    if (el) enableDragging(el);
    updateFraming();
  }

  mode.addEventListener("change", showModeFields);
  form.addEventListener("change", (event) => {
    if (event.target.name === "aspect") { setCropInputs(null); updateFraming(); }
  });
  framing.addEventListener("change", updateFraming);
  window.addEventListener("resize", updateFraming);
  // A one-click fix sets the fields it names; the change refreshes the options panel.
  form.addEventListener("click", (event) => {
    const button = event.target.closest("button.fix");
    if (!button) return;
    setFields(JSON.parse(button.dataset.fix));
    form.querySelector("[name=provider]").dispatchEvent(new Event("change", { bubbles: true }));
  });

  // What the server decided for the chosen provider: the choices it cannot make, and the
  // choices a provider switch changed to ones it can.
  function applyPanel(panel) {
    const disabled = JSON.parse(panel.dataset.disabled || "{}");
    for (const [name, values] of Object.entries(disabled)) {
      const select = form.querySelector(`select[name=${name}]`);
      if (!select) continue;
      for (const option of select.options) option.disabled = values.includes(option.value);
    }
    setFields(JSON.parse(panel.dataset.apply || "{}"));
  }

  function setFields(values) {
    for (const [name, value] of Object.entries(values)) {
      const field = form.querySelector(`[name=${name}]`) || document.querySelector(`[name=${name}]`);
      if (!field) continue;
      if (field.type === "checkbox") field.checked = Boolean(value);
      else field.value = value === null ? "" : value;
    }
    showModeFields();
  }

  document.body.addEventListener("htmx:afterSettle", (event) => {
    if (event.target.classList && event.target.classList.contains("still-slot")) afterSwap();
    const panel = document.getElementById("options");
    if (event.target === panel) applyPanel(panel.querySelector(".panel-state"));
  });
  const el = framer();
  if (el) enableDragging(el);
  showModeFields();
})();
