// Create page: show the fields the chosen mode needs, and preview the chosen images.
(function () {
  const form = document.getElementById("create-form");
  if (!form) return;
  const mode = form.querySelector("[name=mode]");

  function showModeFields() {
    form.querySelectorAll("[data-modes]").forEach((el) => {
      el.hidden = !el.dataset.modes.split(" ").includes(mode.value);
    });
  }

  function preview(inputName, imgId) {
    const input = form.querySelector(`[name=${inputName}]`);
    const img = document.getElementById(imgId);
    if (!input || !img) return;
    input.addEventListener("change", () => {
      const file = input.files && input.files[0];
      if (img.src) URL.revokeObjectURL(img.src);
      img.hidden = !file;
      if (file) img.src = URL.createObjectURL(file);
    });
  }

  mode.addEventListener("change", showModeFields);
  showModeFields();
  preview("image", "image-preview");
  preview("last_frame", "last-frame-preview");
})();
