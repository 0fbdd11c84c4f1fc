// The search page: text box, video drop zone, a grid of animated previews; click a result to search by it.
"use strict";

const FRAME_MS = 250;  // animation speed of the previews

function setStatus(message, isError = false) {
  const status = document.getElementById("status");
  status.textContent = message;
  status.classList.toggle("error", isError);
}

function topK() {
  const k = parseInt(document.getElementById("k").value, 10);
  return Number.isFinite(k) && k > 0 ? k : 12;
}

async function readAnswer(response) {
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function showHits(answer) {
  const results = document.getElementById("results");
  const template = document.getElementById("hit-template");
  results.replaceChildren();
  for (const hit of answer.hits) {
    const card = template.content.firstElementChild.cloneNode(true);
    card.dataset.clipId = hit.clip_id;
    card.dataset.frame = "0";
    card.dataset.frames = String(hit.frames);
    const sprite = card.querySelector(".sprite");
    sprite.setAttribute("aria-label", hit.caption || hit.clip_id);
    if (hit.frames > 0) {
      // the preview is one strip of square tiles; show one tile at a time
      sprite.style.backgroundImage = `url("/api/preview/${encodeURIComponent(hit.clip_id)}")`;
      sprite.style.backgroundSize = `${hit.frames * 100}% 100%`;
      sprite.style.backgroundPosition = "0% 0%";
    }
    card.querySelector(".rank").textContent = `#${hit.rank}`;
    card.querySelector(".score").textContent = hit.score.toFixed(3);
    card.querySelector(".clip").textContent = hit.clip_id;
    card.querySelector(".caption").textContent = hit.caption || "";
    card.addEventListener("click", () => searchByMotion(hit.clip_id));
    card.addEventListener("keydown", (event) => { if (event.key === "Enter") searchByMotion(hit.clip_id); });
    results.appendChild(card);
  }
  setStatus(`${answer.hits.length} motions for ${answer.query} (${answer.elapsed_ms.toFixed(0)} ms)`);
}

function animatePreviews() {
  for (const card of document.querySelectorAll(".hit")) {
    const frames = parseInt(card.dataset.frames, 10);
    if (frames < 2) continue;
    const next = (parseInt(card.dataset.frame, 10) + 1) % frames;
    card.dataset.frame = String(next);
    card.querySelector(".sprite").style.backgroundPosition = `${(100 * next) / (frames - 1)}% 0%`;
  }
}

async function run(request, description) {
  setStatus(`searching ${description}…`);
  try {
    showHits(await readAnswer(await request));
  } catch (error) {
    document.getElementById("results").replaceChildren();
    setStatus(error.message, true);
  }
}

function searchByText(text) {
  const params = new URLSearchParams({ text, k: String(topK()) });
  return run(fetch(`/api/search?${params}`), `for "${text}"`);
}

function searchByMotion(clipId) {
  document.getElementById("query").value = "";
  const params = new URLSearchParams({ motion: clipId, k: String(topK()) });
  return run(fetch(`/api/search?${params}`), `like ${clipId}`);
}

function searchByVideo(file) {
  const form = new FormData();
  form.append("video", file, file.name);
  form.append("k", String(topK()));
  return run(fetch("/api/search/video", { method: "POST", body: form }), `like ${file.name}`);
}

async function describeLibrary() {
  try {
    const info = await readAnswer(await fetch("/api/info"));
    document.getElementById("library").textContent =
      `${info.clips} motions · run ${info.run} · ${info.backend} search`;
  } catch (error) {
    setStatus(error.message, true);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  describeLibrary();
  document.getElementById("text-form").addEventListener("submit", (event) => {
    event.preventDefault();
    searchByText(document.getElementById("query").value);
  });
  const dropZone = document.getElementById("drop-zone");
  dropZone.addEventListener("dragover", (event) => { event.preventDefault(); dropZone.classList.add("over"); });
  dropZone.addEventListener("dragleave", () => dropZone.classList.remove("over"));
  dropZone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropZone.classList.remove("over");
    if (event.dataTransfer.files.length > 0) searchByVideo(event.dataTransfer.files[0]);
  });
  document.getElementById("video-file").addEventListener("change", (event) => {
    if (event.target.files.length > 0) searchByVideo(event.target.files[0]);
  });
  setInterval(animatePreviews, FRAME_MS);
});
