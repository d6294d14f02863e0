// The xvlm web page: text search over the server's index, grounding a phrase
// in a chosen image, and ranking texts for an uploaded image. Talks only to
// the server's own /v1/ endpoints (docs/serve.md); no external resources.
"use strict";

const $ = (id) => document.getElementById(id);
let apiKey = sessionStorage.getItem("xvlm-key") || "";
let chosen = null; // {image: name under the root} or {image_base64: data URL}: what grounding runs on

function say(text) { $("status").textContent = text || ""; }

// POST a JSON body; asks once for the API key when the server wants one.
async function api(path, body) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const headers = {"Content-Type": "application/json"};
    if (apiKey) headers["Authorization"] = "Bearer " + apiKey;
    const r = await fetch(path, {method: "POST", headers, body: JSON.stringify(body)});
    if (r.status === 401 && attempt === 0) {
      apiKey = window.prompt("This server needs an API key:") || "";
      sessionStorage.setItem("xvlm-key", apiKey);
      continue;
    }
    const answer = await r.json();
    if (!r.ok) throw new Error(answer.error ? answer.error.message : "HTTP " + r.status);
    return answer;
  }
  throw new Error("no valid API key");
}

// Result pictures come from /images/ (with the key, so through fetch).
async function pictureUrl(url) {
  const r = await fetch(url, {headers: apiKey ? {"Authorization": "Bearer " + apiKey} : {}});
  if (!r.ok) throw new Error("cannot load " + url);
  return URL.createObjectURL(await r.blob());
}

function fmt(x) { return x === null || x === undefined ? "–" : Number(x).toFixed(3); }

async function search(event) {
  event.preventDefault();
  const text = $("query").value.trim();
  if (!text) return;
  say("Searching…");
  try {
    const answer = await api("/v1/search", {text, k: 12});
    const grid = $("results");
    grid.replaceChildren();
    for (const hit of answer.results) {
      const card = document.createElement("figure");
      card.className = "result";
      card.dataset.image = hit.image || "";
      const img = document.createElement("img");
      img.alt = hit.path || "";
      const caption = document.createElement("figcaption");
      caption.className = "score";
      caption.textContent = `#${hit.rank} score ${fmt(hit.score)} · itc ${fmt(hit.itc)}` +
        (hit.itm_prob !== null ? ` · p ${fmt(hit.itm_prob)}` : "");
      card.append(img, caption);
      card.addEventListener("click", () => choose(card, img.src));
      grid.append(card);
      if (hit.url) pictureUrl(hit.url + "?size=256").then((u) => { img.src = u; }).catch((e) => say(e.message));
    }
    say(answer.results.length ? "" : "No results.");
  } catch (e) {
    say(e.message);
  }
}

function showPicture(src) {
  $("viewer").hidden = false;
  $("box").hidden = true;
  $("box-info").textContent = "";
  $("picture-img").src = src;
  $("phrase").focus();
}

function choose(card, src) {
  document.querySelectorAll(".result.selected").forEach((c) => c.classList.remove("selected"));
  card.classList.add("selected");
  chosen = {image: card.dataset.image};
  showPicture(src);
}

async function ground(event) {
  event.preventDefault();
  const text = $("phrase").value.trim();
  if (!chosen || !text) return;
  say("Grounding…");
  try {
    const answer = await api("/v1/ground", Object.assign({text}, chosen));
    const [x, y, w, h] = answer.box;
    const box = $("box");
    // Percentages of the original size, so the box follows the picture's scaling.
    box.style.left = (100 * x / answer.width) + "%";
    box.style.top = (100 * y / answer.height) + "%";
    box.style.width = (100 * w / answer.width) + "%";
    box.style.height = (100 * h / answer.height) + "%";
    box.hidden = false;
    $("box-info").textContent = `"${text}": x ${x.toFixed(1)}, y ${y.toFixed(1)}, ` +
      `${w.toFixed(1)} × ${h.toFixed(1)} px of ${answer.width} × ${answer.height}`;
    say("");
  } catch (e) {
    say(e.message);
  }
}

function readAsDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error("cannot read " + file.name));
    reader.readAsDataURL(file);
  });
}

async function uploaded() {
  const file = $("upload").files[0];
  if (!file) return;
  const data = await readAsDataUrl(file);
  document.querySelectorAll(".result.selected").forEach((c) => c.classList.remove("selected"));
  chosen = {image_base64: data};
  showPicture(data);
}

async function rank(event) {
  event.preventDefault();
  const texts = $("texts").value.split("\n").map((t) => t.trim()).filter((t) => t);
  if (!chosen || !chosen.image_base64 || !texts.length) { say("Choose an image file and type some texts."); return; }
  say("Ranking…");
  try {
    const answer = await api("/v1/search", {image_base64: chosen.image_base64, texts, k: texts.length});
    const list = $("ranked");
    list.replaceChildren();
    for (const hit of answer.results) {
      const li = document.createElement("li");
      li.textContent = `${hit.text} — score ${fmt(hit.score)}, itc ${fmt(hit.itc)}`;
      list.append(li);
    }
    say("");
  } catch (e) {
    say(e.message);
  }
}

$("search-form").addEventListener("submit", search);
$("ground-form").addEventListener("submit", ground);
$("upload").addEventListener("change", () => uploaded().catch((e) => say(e.message)));
$("upload-form").addEventListener("submit", rank);
