"use strict";
// detforge web page: upload an image, draw the detections, filter them by score on the client, and show the
// values read in the boxes in large type beside the photo (hover or click a value to highlight its box).
// Every text that comes from the server or the user is inserted with textContent, never as HTML.
(function () {
  const $ = (id) => document.getElementById(id);
  const palette = ["#e53935", "#1e88e5", "#43a047", "#fb8c00", "#8e24aa", "#00acc1", "#6d4c41", "#3949ab"];
  let current = null; // {image, result}
  let hovered = null; // index of the box whose value the pointer or focus is on
  let pinned = null; // index of the box whose value was clicked (stays highlighted)

  function authHeaders() {
    const token = $("token").value.trim();
    return token ? { Authorization: "Bearer " + token } : {};
  }

  function setStatus(text, isError) {
    $("status").textContent = text;
    $("status").className = isError ? "error" : "muted";
  }

  function threshold() {
    return parseFloat($("threshold").value);
  }

  async function loadModelInfo() {
    try {
      const response = await fetch("/v1/model", { headers: authHeaders() });
      if (!response.ok) return;
      const info = await response.json();
      $("model-name").textContent = info.name + " (version " + info.version + ", " + info.classes.length + " classes)";
      $("threshold").value = String(info.score_threshold);
      $("threshold-value").textContent = Number(info.score_threshold).toFixed(2);
    } catch (err) {
      // the page still works without model info
    }
  }

  // Boxes kept at the slider's threshold: [{i, label, score, text, textScore, color}]
  function kept() {
    if (!current) return [];
    const { result } = current;
    const cut = threshold();
    const texts = result.texts || [];
    const textScores = result.text_scores || [];
    const out = [];
    result.scores.forEach((score, i) => {
      if (score < cut) return;
      const text = texts[i] === undefined ? null : texts[i];
      const color = palette[result.class_ids[i] % palette.length];
      out.push({ i, label: result.labels[i], score, text, textScore: textScores[i], color });
    });
    return out;
  }

  function highlighted() {
    return hovered !== null ? hovered : pinned;
  }

  // Paint the photo and the boxes; the highlighted box (a value hovered or clicked) gets a thick yellow frame
  // and the others are dimmed, so the value read is easy to find on the photo.
  function paint() {
    const canvas = $("canvas");
    if (!current) return;
    const { image, result } = current;
    canvas.width = result.image.width;
    canvas.height = result.image.height;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
    const line = Math.max(2, Math.round(canvas.width / 400));
    const fontSize = Math.max(12, Math.round(canvas.width / 50));
    const focus = highlighted();
    ctx.textBaseline = "top";
    kept().forEach((d) => {
      const [x0, y0, x1, y1] = result.boxes[d.i];
      const isFocus = d.i === focus;
      ctx.globalAlpha = focus !== null && !isFocus ? 0.35 : 1;
      ctx.strokeStyle = d.color;
      ctx.lineWidth = line;
      ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
      if (isFocus) {
        ctx.strokeStyle = "#ffd600";
        ctx.lineWidth = line * 3;
        ctx.strokeRect(x0 - line * 2, y0 - line * 2, x1 - x0 + line * 4, y1 - y0 + line * 4);
      }
      ctx.font = fontSize + "px sans-serif";
      const caption = d.label + " " + d.score.toFixed(2);
      const width = ctx.measureText(caption).width + 6;
      const height = fontSize + 4;
      ctx.fillStyle = d.color;
      ctx.fillRect(x0, Math.max(0, y0 - height), width, height);
      ctx.fillStyle = "#fff";
      ctx.fillText(caption, x0 + 3, Math.max(0, y0 - height) + 2);
      if (d.text) { // the value read, large, beside the box
        const big = Math.max(fontSize * 1.5, Math.min(fontSize * 3, (y1 - y0) * 0.9));
        ctx.font = "bold " + Math.round(big) + "px sans-serif";
        const tw = ctx.measureText(d.text).width + 8;
        let tx = x1 + line * 2;
        if (tx + tw > canvas.width) tx = Math.max(0, x0 - line * 2 - tw);
        const ty = Math.min(Math.max(0, y0), Math.max(0, canvas.height - big - 4));
        ctx.fillStyle = "#fff";
        ctx.fillRect(tx, ty, tw, big + 4);
        ctx.strokeStyle = isFocus ? "#ffd600" : d.color;
        ctx.lineWidth = line;
        ctx.strokeRect(tx, ty, tw, big + 4);
        ctx.fillStyle = "#000";
        ctx.fillText(d.text, tx + 4, ty + 2);
      }
    });
    ctx.globalAlpha = 1;
    $("drawn").dataset.highlighted = String(focus === null ? -1 : focus);
    document.querySelectorAll("#values li").forEach((li) => {
      li.classList.toggle("active", Number(li.dataset.index) === focus);
    });
  }

  function showValues(boxes) {
    const values = $("values");
    values.replaceChildren();
    const read = boxes.filter((d) => d.text !== null);
    $("reads").hidden = read.length === 0;
    read.forEach((d) => {
      const item = document.createElement("li");
      item.dataset.index = String(d.i);
      item.tabIndex = 0;
      item.style.borderColor = d.color;
      const value = document.createElement("span");
      value.className = "value";
      value.textContent = d.text === "" ? "?" : d.text;
      const note = document.createElement("span");
      note.className = "muted";
      const sure = typeof d.textScore === "number" ? " · read " + d.textScore.toFixed(2) : "";
      note.textContent = d.label + " " + d.score.toFixed(2) + sure;
      item.append(value, note);
      item.addEventListener("mouseenter", () => { hovered = d.i; paint(); });
      item.addEventListener("mouseleave", () => { hovered = null; paint(); });
      item.addEventListener("focus", () => { hovered = d.i; paint(); });
      item.addEventListener("blur", () => { hovered = null; paint(); });
      item.addEventListener("click", () => { pinned = pinned === d.i ? null : d.i; paint(); });
      values.appendChild(item);
    });
    return read.map((d) => d.text);
  }

  function draw() {
    const list = $("detections");
    list.replaceChildren();
    if (!current) return;
    const boxes = kept();
    if (pinned !== null && !boxes.some((d) => d.i === pinned)) pinned = null;
    if (hovered !== null && !boxes.some((d) => d.i === hovered)) hovered = null;
    boxes.forEach((d) => {
      const item = document.createElement("li");
      item.textContent = d.label + " " + d.score.toFixed(2) + (d.text ? " “" + d.text + "”" : "");
      list.appendChild(item);
    });
    const texts = showValues(boxes);
    paint();
    $("drawn").dataset.count = String(boxes.length);
    $("drawn").dataset.labels = JSON.stringify(boxes.map((d) => d.label));
    $("drawn").dataset.texts = JSON.stringify(texts);
    const read = texts.length ? "; read " + texts.join(", ") : "";
    setStatus(boxes.length + " of " + current.result.scores.length + " detections at score >= " +
      threshold().toFixed(2) + read, false);
  }

  function decodeImage(file) {
    return new Promise((resolve, reject) => {
      const url = URL.createObjectURL(file);
      const image = new Image(); // never attached to the document
      image.onload = () => resolve(image);
      image.onerror = () => reject(new Error("the browser cannot display this image"));
      image.src = url;
    });
  }

  async function send(file) {
    $("file-name").textContent = file.name;
    setStatus("Detecting…", false);
    const form = new FormData();
    form.append("image", file, "upload");
    const started = performance.now();
    let response, body;
    try {
      // ask for every detection; the slider filters on the client
      response = await fetch("/v1/detect?score_threshold=0", { method: "POST", body: form, headers: authHeaders() });
      body = await response.json();
    } catch (err) {
      setStatus("Request failed: " + err.message, true);
      return;
    }
    const roundTrip = performance.now() - started;
    if (!response.ok) {
      const error = body && body.error ? body.error.code + ": " + body.error.message : "HTTP " + response.status;
      setStatus(error, true);
      return;
    }
    try {
      current = { image: await decodeImage(file), result: body };
      hovered = null;
      pinned = null;
    } catch (err) {
      setStatus(err.message, true);
      return;
    }
    const t = body.timing_ms;
    $("latency").textContent = "round trip " + roundTrip.toFixed(0) + " ms; server " + t.total.toFixed(0) +
      " ms (queue " + t.queue.toFixed(0) + ", inference " + t.inference.toFixed(0) + ")";
    draw();
  }

  $("file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) send(file);
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const file = event.dataTransfer.files[0];
    if (file) send(file);
  });
  $("threshold").addEventListener("input", () => {
    $("threshold-value").textContent = threshold().toFixed(2);
    draw();
  });
  $("token").addEventListener("change", loadModelInfo);
  loadModelInfo();
})();
