// The web chat behind a link: history, sending, live updates over a
// WebSocket that reconnects after a network loss and catches up from the
// last message it has, so nothing is missed or shown twice. No framework,
// no build step.
"use strict";

(function () {
  const root = document.getElementById("chat");
  if (!root) return;
  const conv = root.dataset.conversation;
  const me = root.dataset.me;
  const base = root.dataset.base; // the chat's path: a link's /w/… or the app's /app/c/…
  const log = document.getElementById("log");
  const status = document.getElementById("status");
  const form = document.getElementById("send");
  const text = document.getElementById("text");
  const button = document.getElementById("send-button");
  const older = document.getElementById("older");
  const endedBanner = document.getElementById("ended");

  const shown = new Map(); // seq → <li>
  let lastSeq = 0;
  let firstSeq = 0;
  let ended = false;
  let socket = null;
  let retry = 1000;

  function setStatus(s) { status.textContent = s; }

  function end() {
    if (ended) return;
    ended = true;
    endedBanner.hidden = false;
    text.disabled = true;
    button.disabled = true;
    setStatus("");
    if (socket) socket.close();
  }

  function bubble(m) {
    const li = document.createElement("li");
    li.className = m.sender === me ? "mine" : "theirs";
    li.dataset.seq = m.seq;
    li.textContent = m.text;
    const t = document.createElement("time");
    t.dateTime = m.created_at;
    t.textContent = new Date(m.created_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    li.appendChild(t);
    return li;
  }

  // show adds messages in seq order, each once.
  function show(messages, atTop) {
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    for (const m of messages) {
      if (shown.has(m.seq)) continue;
      const li = bubble(m);
      shown.set(m.seq, li);
      let next = null;
      for (const el of log.children) {
        if (Number(el.dataset.seq) > m.seq) { next = el; break; }
      }
      log.insertBefore(li, next);
      lastSeq = Math.max(lastSeq, m.seq);
      firstSeq = firstSeq === 0 ? m.seq : Math.min(firstSeq, m.seq);
    }
    if (!atTop && atBottom) log.scrollTop = log.scrollHeight;
    markRead();
  }

  // markRead tells the server what the person has seen: everything shown,
  // while the page is in front. One call at a time; marks only move on.
  let readSeq = 0;
  let reading = false;
  async function markRead() {
    if (reading || ended || document.visibilityState !== "visible" || lastSeq <= readSeq) return;
    reading = true;
    const seq = lastSeq;
    try {
      const res = await call("/read", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ seq: seq }) });
      readSeq = Math.max(readSeq, res.read_seq, seq);
    } catch (e) { /* the next message or visit tries again */ }
    reading = false;
    if (lastSeq > readSeq) markRead();
  }
  document.addEventListener("visibilitychange", markRead);

  async function call(path, init) {
    const res = await fetch(base + path, Object.assign({ credentials: "same-origin" }, init));
    if (res.status === 401 || res.status === 410) { end(); throw new Error("ended"); }
    if (!res.ok) throw new Error("HTTP " + res.status);
    return res.json();
  }

  async function loadLatest() {
    const page = await call("/messages");
    show(page.messages, false);
    older.hidden = !page.has_more;
    log.scrollTop = log.scrollHeight;
  }

  older.addEventListener("click", async function () {
    try {
      const page = await call("/messages?before=" + firstSeq);
      show(page.messages, true);
      older.hidden = !page.has_more;
    } catch (e) { /* the status line says why */ }
  });

  function connect() {
    if (ended) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(proto + "//" + location.host + base + "/socket?after=" + lastSeq);
    socket.onopen = function () { retry = 1000; };
    socket.onmessage = function (ev) {
      const f = JSON.parse(ev.data);
      if (f.type === "message") show([f.message], false);
      if (f.type === "ready") setStatus("");
    };
    socket.onclose = function () {
      if (ended) return;
      setStatus(root.dataset.lost);
      // A closed socket may mean the session ended: ask before retrying.
      setTimeout(async function () {
        try {
          await call("/messages");
          connect();
        } catch (e) {
          if (!ended) { retry = Math.min(retry * 2, 10000); setTimeout(connect, retry); }
        }
      }, retry);
    };
  }

  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    const body = text.value.trim();
    if (!body || ended) return;
    // The same key on every retry: the server sends it once.
    const key = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random());
    button.disabled = true;
    for (let attempt = 0; attempt < 5 && !ended; attempt++) {
      try {
        const res = await call("/messages", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ text: body, clientMsgId: key }),
        });
        show([res.message], false);
        log.scrollTop = log.scrollHeight;
        text.value = "";
        setStatus("");
        break;
      } catch (e) {
        if (ended) break;
        setStatus(root.dataset.retrying);
        await new Promise(function (r) { setTimeout(r, 1000 * (attempt + 1)); });
      }
    }
    button.disabled = ended;
    if (!ended) text.focus();
  });

  text.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); form.requestSubmit(); }
  });

  loadLatest().then(connect, function () { if (!ended) { setStatus(root.dataset.loadfail); setTimeout(connect, retry); } });
})();
