// Create page: the fields each mode needs, the stills (drop, paste, choose; framing), camera
// moves and recent prompts, and what the server's options panel decides.
//
// The server checks and stores each still the moment it is chosen (htmx swaps in its preview)
// and decides every rule (what a provider can make, prices, the crop it will cut): this script
// only shows it. When the image does not fit the chosen aspect, a crop frame appears over it:
// drag it, or move it with the arrow keys (Shift for bigger steps). Its box, in the stored
// image's own pixels, goes with the form. "Pad" shows the padded image as the server makes it.
(function () {
  const form = document.getElementById("create-form");
  if (!form) return;
  const framing = document.getElementById("framing");
  const note = document.getElementById("framing-note");
  const crop = ["left", "top", "width", "height"].map((side) => form.querySelector(`[name=crop_${side}]`));
  const prompt = form.querySelector("[name=prompt]");
  let box = null; // {left, top, width, height} in image pixels

  const value = (name) => {
    const checked = form.querySelector(`[name=${name}]:checked`);
    return checked ? checked.value : (form.querySelector(`[name=${name}]`) || {}).value;
  };
  const changed = (el) => el.dispatchEvent(new Event("change", { bubbles: true }));

  function showModeFields() {
    const mode = value("mode");
    document.querySelectorAll("[data-modes]").forEach((el) => {
      el.hidden = !el.dataset.modes.split(" ").includes(mode);
    });
    const image = form.querySelector("input[type=file][name=image]");
    if (image) image.setAttribute("aria-label", mode === "first_last" ? "First frame" : "Image");
    updateFraming();
  }

  // ------------------------------------------------------------------ stills

  function framer() {
    const slot = document.getElementById("image-slot");
    return value("mode") !== "text" && slot ? slot.querySelector(".framer") : null;
  }

  function markStills() {
    document.querySelectorAll(".still-field").forEach((field) => {
      field.classList.toggle("has-still", !!field.querySelector(".still-slot .framer"));
    });
    const still = document.querySelector("#image-slot img.still");
    document.querySelectorAll(".aspect-tile .frame-still").forEach((img) => {
      if (still) { img.src = still.src; img.hidden = false; } else { img.hidden = true; img.removeAttribute("src"); }
    });
  }

  function sendFile(input, file) {
    const files = new DataTransfer();
    files.items.add(file);
    input.files = files.files;
    changed(input);
  }

  document.querySelectorAll(".dropzone").forEach((zone) => {
    const input = zone.querySelector("input[type=file]");
    zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("dragging"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("dragging");
      const file = [...event.dataTransfer.files].find((f) => f.type.startsWith("image/"));
      if (file) sendFile(input, file);
    });
  });

  // A pasted image goes to the image, or to the last frame when the image is already there.
  document.addEventListener("paste", (event) => {
    if (event.target.closest && event.target.closest("textarea, input[type=text], input[type=number]")) return;
    const file = [...(event.clipboardData || {}).files || []].find((f) => f.type.startsWith("image/"));
    if (!file || value("mode") === "text") return;
    const hasImage = !!document.querySelector("#image-slot .framer");
    const role = value("mode") === "first_last" && hasImage ? "last_frame" : "image";
    sendFile(form.querySelector(`input[type=file][name=${role}]`), file);
    event.preventDefault();
  });

  function ratioFor(width, height) {
    const aspect = value("aspect");
    if (aspect === "16:9") return [16, 9];
    if (aspect === "9:16") return [9, 16];
    return width >= height ? [16, 9] : [9, 16];
  }

  // The largest box of the ratio, centred: the same rule as images.centred_crop.
  function centred(width, height, [rw, rh]) {
    let w = width, h = Math.round((width * rh) / rw);
    if (h > height) { h = height; w = Math.round((height * rw) / rh); }
    return { left: Math.floor((width - w) / 2), top: Math.floor((height - h) / 2), width: w, height: h };
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
    const pad = !fits && value("framing") === "pad";
    el.hidden = pad;
    padded.hidden = !pad;
    if (pad) padded.src = `${el.dataset.paddedUrl}?aspect=${encodeURIComponent(value("aspect"))}`;
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

  function afterStill() {
    // The still is stored: the form sends its id, not the file again.
    form.querySelectorAll("input[type=file]").forEach((input) => {
      if (document.querySelector(`[name=${input.name}_id]`)) input.value = "";
    });
    setCropInputs(null);
    markStills();
    const el = framer();
    if (el) enableDragging(el);
    updateFraming();
  }

  // ------------------------------------------------------------------ prompt

  const phrases = [...document.querySelectorAll(".chip[data-phrase]")].map((chip) => chip.dataset.phrase);
  function markChips() {
    document.querySelectorAll(".chip[data-phrase]").forEach((chip) => {
      chip.setAttribute("aria-pressed", String(prompt.value.includes(chip.dataset.phrase)));
    });
  }
  document.querySelectorAll(".chip[data-phrase]").forEach((chip) => {
    chip.addEventListener("click", () => {
      // One camera move at a time: the chosen one replaces any other the prompt has.
      let text = prompt.value;
      phrases.forEach((phrase) => { text = text.replace(phrase, ""); });
      text = text.replace(/\s{2,}/g, " ").trim();
      const pressed = chip.getAttribute("aria-pressed") === "true";
      prompt.value = pressed ? text : `${text}${text ? " " : ""}${chip.dataset.phrase}`;
      markChips();
      changed(prompt);
      prompt.focus();
    });
  });
  prompt.addEventListener("input", markChips);
  document.querySelectorAll(".recent-prompt").forEach((button) => {
    button.addEventListener("click", () => {
      prompt.value = button.dataset.prompt;
      markChips();
      changed(prompt);
      prompt.focus();
    });
  });

  // ------------------------------------------------------------------ the options panel

  function currentValue(name) {
    const fields = form.querySelectorAll(`[name=${name}]`);
    if (!fields.length) return undefined;
    const first = fields[0];
    if (first.type === "radio") return value(name);
    if (first.type === "checkbox") return first.checked;
    return first.value;
  }

  function setFields(values) {
    for (const [name, wanted] of Object.entries(values)) {
      const fields = form.querySelectorAll(`[name=${name}]`);
      if (!fields.length) continue;
      const first = fields[0];
      if (first.type === "radio") {
        fields.forEach((radio) => {
          radio.checked = String(radio.value) === String(wanted);
          if (radio.checked) radio.disabled = false; // an undo may bring back what is off
        });
      } else if (first.type === "checkbox") {
        first.checked = Boolean(wanted);
      } else {
        first.value = wanted === null ? "" : wanted;
      }
    }
    showModeFields();
  }

  // A one-click fix changes only what it names, and can be undone.
  function offerUndo(before, label) {
    document.querySelectorAll(".undo").forEach((el) => el.remove());
    const bar = document.createElement("div");
    bar.className = "undo";
    bar.setAttribute("role", "status");
    const text = document.createElement("span");
    text.textContent = `${label}.`;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.textContent = "Undo";
    button.addEventListener("click", () => {
      setFields(before);
      bar.remove();
      changed(form.querySelector("[name=prompt]"));
    });
    bar.append(text, button);
    document.getElementById("options").before(bar);
  }

  form.addEventListener("click", (event) => {
    const button = event.target.closest("button.fix");
    if (!button) return;
    const fix = JSON.parse(button.dataset.fix);
    const before = {};
    Object.keys(fix).forEach((name) => { before[name] = currentValue(name); });
    setFields(fix);
    offerUndo(before, button.textContent.trim());
    changed(form.querySelector("[name=prompt]"));
  });

  function markConflicts() {
    form.querySelectorAll(".conflict").forEach((el) => el.classList.remove("conflict"));
    document.querySelectorAll("#options .problem[data-field]").forEach((problem) => {
      const field = document.getElementById(`field-${problem.dataset.field}`);
      if (field) field.classList.add("conflict");
    });
  }

  // What the server decided for the chosen provider: the choices it cannot make are off,
  // except one already chosen: it stays chosen (and sent), marked, until the creator fixes it.
  function applyPanel(state) {
    if (!state) return;
    const disabled = JSON.parse(state.dataset.disabled || "{}");
    for (const [name, values] of Object.entries(disabled)) {
      form.querySelectorAll(`input[name=${name}]`).forEach((input) => {
        input.disabled = values.includes(input.value) && !input.checked;
      });
    }
    setFields(JSON.parse(state.dataset.apply || "{}"));
    markConflicts();
  }

  form.addEventListener("change", (event) => {
    if (["aspect", "framing", "mode"].includes(event.target.name)) {
      if (event.target.name === "aspect") setCropInputs(null);
      showModeFields();
    }
  });
  window.addEventListener("resize", updateFraming);

  document.body.addEventListener("htmx:afterSettle", (event) => {
    if (event.target.classList && event.target.classList.contains("still-slot")) afterStill();
    const panel = document.getElementById("options");
    if (event.target === panel) applyPanel(panel.querySelector(".panel-state"));
  });

  // After a full-page error, take the creator to the first thing to fix.
  const firstError = document.querySelector("#form-errors, .has-error");
  if (firstError) {
    firstError.scrollIntoView({ block: "center" });
    const control = firstError.matches("#form-errors") ? null
      : firstError.querySelector("input:not([type=hidden]), textarea, select");
    if (!control) firstError.setAttribute("tabindex", "-1");
    (control || firstError).focus({ preventScroll: true });
  }

  afterStill();
  markChips();
  applyPanel(document.querySelector("#options .panel-state"));
  showModeFields();
})();
