"use strict";
// detforge web page: upload an image, draw the detections, filter them by score on the client.
// Every text that comes from the server or the user is inserted with textContent, never as HTML.
(function () {
  const $ = (id) => document.getElementById(id);
  const palette = ["#e53935", "#1e88e5", "#43a047", "#fb8c00", "#8e24aa", "#00acc1", "#6d4c41", "#3949ab"];
  let current = null; // {image, result}

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

  function draw() {
    const canvas = $("canvas");
    const list = $("detections");
    list.replaceChildren();
    if (!current) return;
    const { image, result } = current;
    canvas.width = result.image.width;
    canvas.height = result.image.height;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
    const cut = threshold();
    const line = Math.max(2, Math.round(canvas.width / 400));
    const drawn = [];
    ctx.font = Math.max(12, Math.round(canvas.width / 50)) + "px sans-serif";
    ctx.textBaseline = "top";
    result.scores.forEach((score, i) => {
      if (score < cut) return;
      const [x0, y0, x1, y1] = result.boxes[i];
      const label = result.labels[i];
      const color = palette[result.class_ids[i] % palette.length];
      ctx.strokeStyle = color;
      ctx.lineWidth = line;
      ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
      const caption = label + " " + score.toFixed(2);
      const width = ctx.measureText(caption).width + 6;
      const height = parseInt(ctx.font, 10) + 4;
      ctx.fillStyle = color;
      ctx.fillRect(x0, Math.max(0, y0 - height), width, height);
      ctx.fillStyle = "#fff";
      ctx.fillText(caption, x0 + 3, Math.max(0, y0 - height) + 2);
      const item = document.createElement("li");
      item.textContent = caption;
      list.appendChild(item);
      drawn.push(label);
    });
    $("drawn").dataset.count = String(drawn.length);
    $("drawn").dataset.labels = JSON.stringify(drawn);
    setStatus(drawn.length + " of " + result.scores.length + " detections at score >= " + cut.toFixed(2), false);
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
