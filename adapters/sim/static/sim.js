// perfloop simulator page: pick a person, chat with the bot as them, see cards arrive live over SSE.
"use strict";
(() => {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const $ = (id) => document.getElementById(id);
  // The page speaks the language of the person it acts as once they switch (boot.strings has every locale).
  const state = { people: [], user: null, stream: null, messages: new Map(), locale: boot.locale, now: boot.now };
  const S = (key, params) => {
    let text = boot.strings[state.locale]?.[key] ?? boot.strings["zh-CN"][key] ?? key;
    for (const [k, v] of Object.entries(params || {})) text = text.split(`{${k}}`).join(String(v));
    return text;
  };
  const LANGUAGES = { "zh-CN": "中文", en: "English" };

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k === "html") node.innerHTML = v; // only for markdown already escaped by the server
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k.startsWith("data-")) node.setAttribute(k, v);
      else if (v === true) node.setAttribute(k, "");
      else node.setAttribute(k, v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  function eventId() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function toast(text, kind) {
    if (!text) return;
    const node = el("div", { class: `toast ${kind || "info"}`, text, "data-kind": kind || "info" });
    $("toasts").append(node);
    setTimeout(() => node.remove(), 3300);
  }

  function current() { return state.people.find((p) => p.user_id === state.user) || null; }

  // Times are shown where the person lives, as their cards are written, never in the browser's own zone.
  function zone() { return current()?.timezone || boot.timezone; }

  function fmtTime(iso) {
    const options = { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    try {
      return new Date(iso).toLocaleString(state.locale, { ...options, timeZone: zone() });
    } catch (err) {
      return new Date(iso).toLocaleString(state.locale, { ...options, timeZone: boot.timezone });
    }
  }

  // ------------------------------------------------------------------ people picker
  async function loadPeople() {
    const res = await fetch("/sim/api/people");
    if (!res.ok) return;
    state.people = (await res.json()).people;
    drawPeople();
  }

  function matches(p, q) {
    if (!q) return true;
    const roles = p.roles.map((r) => S(`role_${r}`)).join(" ");
    return `${p.name} ${p.department} ${p.user_id} ${roles} ${p.manager || ""}`.toLowerCase().includes(q);
  }

  function drawPeople() {
    const q = $("search").value.trim().toLowerCase();
    const shown = state.people.filter((p) => matches(p, q));
    $("people").replaceChildren(...shown.map((p) => {
      const tags = p.roles.filter((r) => r !== "employee").map((r) => el("span", { class: `tag ${r}`, text: S(`role_${r}`) }));
      const last = p.last ? (p.last.kind === "image" ? S("image") : p.last.text) : "";
      return el("li", {
        class: `person${p.user_id === state.user ? " active" : ""}`, "data-user": p.user_id,
        onclick: () => choose(p.user_id),
      },
        el("span", { class: "avatar", text: p.name.slice(-2) }),
        el("div", { class: "meta" },
          el("div", { class: "line1" }, el("span", { class: "name", text: p.name }), ...tags,
            p.messages ? el("span", { class: "badge", text: String(p.messages) }) : null),
          el("div", { class: "dept" }, p.department,
            p.manager ? el("span", { class: "boss", text: ` · ${S("reports_to", { name: p.manager })}` }) : null),
          last ? el("div", { class: "last", text: last }) : null));
    }));
    $("no-results").hidden = shown.length > 0;
  }

  // ------------------------------------------------------------------ conversation
  function choose(userId) {
    if (state.stream) state.stream.close();
    state.user = userId;
    state.messages.clear();
    history.replaceState(null, "", `#user=${encodeURIComponent(userId)}`);
    drawActingAs();
    showClock(state.now);
    document.body.classList.add("chatting");
    $("chat").replaceChildren(el("p", { class: "placeholder", text: S("connecting") }));
    for (const id of ["text", "send"]) $(id).disabled = false;
    drawPeople();
    connect(userId);
  }

  function drawActingAs() {
    const person = current();
    $("acting-as").textContent = person ? `${S("you")}：${person.name} · ${person.department}` : state.user || "";
    const other = person && person.locale === "en" ? "zh-CN" : "en";
    $("lang").hidden = !person;
    $("lang").textContent = S("lang_switch", { lang: LANGUAGES[other] });
    $("lang").dataset.to = other;
  }

  // The person's language (their cards from now on) and this page's, changed together.
  async function switchLanguage() {
    const person = current();
    if (!person) return;
    const res = await fetch(`/sim/api/people/${encodeURIComponent(person.user_id)}/locale`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ locale: $("lang").dataset.to }) });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) { toast(data.error || `HTTP ${res.status}`, "error"); return; }
    person.locale = data.locale;
    state.locale = data.locale;
    history.replaceState(null, "", `?lang=${encodeURIComponent(data.locale)}${location.hash}`);
    label();
    drawPeople();
    drawAll();
    toast(S("lang_switched", { name: person.name, lang: LANGUAGES[data.locale] }), "success");
  }

  function setStatus(kind) {
    document.body.dataset.stream = kind;
    state.status = kind;
    $("status").textContent = S(kind === "open" ? "connected" : kind === "closed" ? "disconnected" : "connecting");
  }

  function connect(userId) {
    setStatus("connecting");
    const stream = new EventSource(`/sim/api/stream?user=${encodeURIComponent(userId)}`);
    state.stream = stream;
    // "ready" comes once we are subscribed (also after every reconnect): reload the list so nothing is lost.
    stream.addEventListener("ready", async () => {
      const res = await fetch(`/sim/api/messages?user=${encodeURIComponent(userId)}`);
      if (state.user !== userId || !res.ok) return;
      for (const m of (await res.json()).messages) upsert(m);
      drawAll();
      setStatus("open");
    });
    stream.addEventListener("message", (e) => upsert(JSON.parse(e.data).message, true));
    stream.addEventListener("update", (e) => upsert(JSON.parse(e.data).message, true));
    stream.onerror = () => { if (state.user === userId) setStatus("closed"); };
  }

  function upsert(message, live) {
    const known = state.messages.get(message.id);
    if (known && known.version >= message.version) return;
    state.messages.set(message.id, message);
    if (!live) return;
    const node = drawMessage(message);
    const old = $("chat").querySelector(`[data-message-id="${message.id}"]`);
    if (old) {
      old.replaceWith(node);
      const card = node.querySelector(".card");
      if (card) { card.classList.add("flash"); setTimeout(() => card.classList.remove("flash"), 800); }
    } else {
      $("chat").querySelector(".placeholder")?.remove();
      $("chat").append(node);
      node.scrollIntoView({ block: "end" });
    }
    const p = state.people.find((x) => x.user_id === state.user);
    if (p && !known) { p.messages += 1; p.last = { kind: message.kind, text: message.card?.summary || message.text || "" }; drawPeople(); }
  }

  function drawAll() {
    const chat = $("chat");
    if (!state.user) return;
    const all = [...state.messages.values()];
    if (!all.length) { chat.replaceChildren(el("p", { class: "placeholder", text: S("empty_chat") })); return; }
    chat.replaceChildren(...all.map(drawMessage));
    chat.scrollTop = chat.scrollHeight;
  }

  function drawMessage(m) {
    let body;
    if (m.kind === "card") body = drawCard(m);
    else if (m.kind === "image") body = el("img", { src: m.src, alt: "" });
    else body = el("div", { class: "bubble", text: m.text });
    return el("div", { class: `msg ${m.sender}`, "data-message-id": m.id, "data-version": String(m.version) },
      body, el("time", { text: fmtTime(m.at) }));
  }

  function drawCard(m) {
    const c = m.card;
    const head = el("div", { class: `card-head ${c.header.colour}` }, el("h3", { text: c.header.title }),
      c.header.subtitle ? el("small", { text: c.header.subtitle }) : null);
    const body = el("div", { class: "card-body" });
    for (const e of c.elements) {
      if (e.kind === "markdown") body.append(el("div", { class: "md", html: e.html }));
      else if (e.kind === "fields") body.append(el("dl", { class: "fields" },
        e.items.flatMap((kv) => [el("dt", { text: kv.label }), el("dd", { text: kv.value })])));
      else if (e.kind === "image") body.append(el("img", { src: e.src, alt: e.alt, loading: "lazy" }));
      else if (e.kind === "note") body.append(el("div", { class: "note", text: e.text }));
      else if (e.kind === "divider") body.append(el("hr"));
      else if (e.kind === "actions") body.append(el("div", { class: "buttons" },
        e.buttons.map((b) => button(b, () => click(m, b, null)))));
      else if (e.kind === "form") body.append(drawForm(m, e));
    }
    return el("div", { class: "card", "data-title": c.header.title }, head, body);
  }

  function button(b, onClick) {
    return el("button", { type: "button", class: `btn ${b.style}`, disabled: b.disabled, text: b.label,
      onclick: (ev) => { ev.preventDefault(); if (!b.disabled) onClick(ev.currentTarget); } });
  }

  function drawForm(m, f) {
    const form = el("form", { class: "form", "data-form": f.name, onsubmit: (ev) => ev.preventDefault() });
    for (const i of f.inputs) {
      let field;
      if (i.kind === "text_input") {
        const attrs = { name: i.name, placeholder: i.placeholder, maxlength: String(i.max_length), required: i.required };
        field = i.multiline ? el("textarea", attrs) : el("input", { type: "text", ...attrs });
        field.value = i.default || "";
      } else if (i.kind === "select") {
        field = el("select", { name: i.name, required: i.required, multiple: i.multiple },
          i.multiple ? null : el("option", { value: "", text: S("select_placeholder") }),
          i.options.map((o) => el("option", { value: o.value, text: o.label, selected: o.value === i.default })));
      } else {
        field = el("input", { type: "date", name: i.name, required: i.required });
        field.value = i.default || "";
      }
      form.append(el("label", { class: i.required ? "required" : "" }, el("span", { text: i.label }), field));
    }
    const buttons = [button(f.submit, () => submitForm(m, f, form))];
    if (f.cancel) buttons.push(button(f.cancel, () => click(m, f.cancel, null)));
    form.append(el("div", { class: "buttons" }, buttons));
    return form;
  }

  function submitForm(m, f, form) {
    const values = {};
    for (const i of f.inputs) {
      const field = form.elements.namedItem(i.name);
      const value = i.multiple ? Array.from(field.selectedOptions, (o) => o.value) : field.value.trim();
      const empty = Array.isArray(value) ? value.length === 0 : value === "";
      field.classList.toggle("invalid", i.required && empty);
      if (i.required && empty) { field.focus(); toast(S("required", { label: i.label }), "warning"); return; }
      if (!empty) values[i.name] = value;
    }
    click(m, f.submit, values);
  }

  async function click(m, b, formValues) {
    const card = $("chat").querySelector(`[data-message-id="${m.id}"] .card`);
    const buttons = card ? [...card.querySelectorAll("button")] : [];
    buttons.forEach((x) => { x.dataset.wasDisabled = x.disabled ? "1" : ""; x.disabled = true; });
    try {
      const answer = await post({ type: "action", user: state.user, value: b.value, message_ref: m.id,
        form: formValues || {}, client_event_id: eventId() });
      toast(answer.toast, answer.toast_kind);
    } catch (err) {
      toast(S("submit_failed", { reason: err.message }), "error");
    } finally {
      // If the card was replaced meanwhile these nodes are gone; otherwise give the buttons back.
      buttons.forEach((x) => { x.disabled = x.dataset.wasDisabled === "1"; });
    }
  }

  async function post(body) {
    const res = await fetch("/callbacks/sim", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body) });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
    return data;
  }

  async function sendText(ev) {
    ev.preventDefault();
    const box = $("text");
    const text = box.value.trim();
    if (!text || !state.user) return;
    box.value = "";
    try {
      const answer = await post({ type: "text", user: state.user, text, client_event_id: eventId() });
      if (answer.toast_kind === "error") toast(answer.toast, "error");
    } catch (err) {
      box.value = text;
      toast(S("submit_failed", { reason: err.message }), "error");
    }
  }

  // ------------------------------------------------------------------ images
  async function shrink(file) {
    // Callback bodies are capped (server.max_body_bytes): re-encode big photos as JPEG until they fit.
    const limit = Math.floor(boot.maxUploadBytes * 0.9);
    if (file.size <= limit) return file;
    const bitmap = await createImageBitmap(file);
    let scale = Math.min(1, 1600 / Math.max(bitmap.width, bitmap.height));
    let quality = 0.85;
    for (let i = 0; i < 8; i++) {
      const canvas = document.createElement("canvas");
      canvas.width = Math.max(1, Math.round(bitmap.width * scale));
      canvas.height = Math.max(1, Math.round(bitmap.height * scale));
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      const blob = await new Promise((ok) => canvas.toBlob(ok, "image/jpeg", quality));
      if (blob && blob.size <= limit) return new File([blob], "photo.jpg", { type: "image/jpeg" });
      scale *= 0.75; quality = Math.max(0.5, quality - 0.1);
    }
    throw new Error("too large");
  }

  async function upload() {
    const input = $("upload");
    const file = input.files[0];
    input.value = "";
    if (!file || !state.user) return;
    toast(S("uploading"));
    try {
      const small = await shrink(file);
      const data = new FormData();
      data.append("type", "image");
      data.append("user", state.user);
      data.append("client_event_id", eventId());
      data.append("file", small, small.name || "image");
      const res = await fetch("/callbacks/sim", { method: "POST", body: data });
      const answer = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(answer.error || `HTTP ${res.status}`);
    } catch (err) {
      toast(S("upload_failed", { reason: err.message }), "error");
    }
  }

  // ------------------------------------------------------------------ clock
  function showClock(iso) {
    state.now = iso;
    $("clock-now").textContent = fmtTime(iso);
    $("clock-now").dateTime = iso;
    $("clock-zone").textContent = zone();
  }

  async function fastForward(step) {
    const res = await fetch("/sim/api/clock", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(step) });
    const data = await res.json();
    if (!res.ok) { toast(data.error, "error"); return; }
    showClock(data.now);
    toast(S("clock_advanced", { now: fmtTime(data.now) }), "success");
  }

  // ------------------------------------------------------------------ wiring
  function label() {
    document.documentElement.lang = state.locale;
    document.title = S("title");
    for (const node of document.querySelectorAll("[data-s]")) node.textContent = S(node.dataset.s);
    $("search").placeholder = S("search");
    $("text").placeholder = S("input_placeholder");
    $("upload-label").title = S("upload");
    if (state.status) setStatus(state.status);
    drawActingAs();
    showClock(state.now);
  }

  label();
  $("search").addEventListener("input", drawPeople);
  $("composer").addEventListener("submit", sendText);
  $("text").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) sendText(ev);
  });
  $("upload").addEventListener("change", upload);
  $("ff-hour").addEventListener("click", () => fastForward({ hours: 1 }));
  $("ff-day").addEventListener("click", () => fastForward({ days: 1 }));
  $("ff-week").addEventListener("click", () => fastForward({ days: 7 }));
  $("lang").addEventListener("click", switchLanguage);
  $("back").addEventListener("click", () => document.body.classList.remove("chatting"));
  setInterval(async () => {
    const res = await fetch("/sim/api/clock").catch(() => null);
    if (res && res.ok) showClock((await res.json()).now);
  }, 30000);
  setInterval(() => { if (!document.hidden) loadPeople(); }, 15000);
  loadPeople().then(() => {
    const wanted = new URLSearchParams(location.hash.slice(1)).get("user");
    if (wanted && state.people.some((p) => p.user_id === wanted)) choose(wanted);
  });
})();
