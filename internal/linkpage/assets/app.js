// The web app's chat list: the button that turns notifications on in this
// browser (a service worker, a push subscription made with the server's
// VAPID key, posted to /app/push). No framework, no build step.
"use strict";

(function () {
  const button = document.getElementById("notify");
  if (!button || !("serviceWorker" in navigator) || !("PushManager" in window)) return;
  const status = document.getElementById("notify-status");
  button.hidden = false;

  function key(b64) {
    const s = atob(b64.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((b64.length + 3) % 4));
    return Uint8Array.from(s, function (c) { return c.charCodeAt(0); });
  }

  // A registration just made is still installing, and PushManager refuses
  // to subscribe without an active worker. (serviceWorker.ready would wait
  // forever: this page, /app, is not under the worker's scope /app/.)
  function activated(reg) {
    const w = reg.installing || reg.waiting;
    if (reg.active || !w) return Promise.resolve(reg);
    return new Promise(function (resolve, reject) {
      w.addEventListener("statechange", function () {
        if (w.state === "activated") resolve(reg);
        if (w.state === "redundant") reject(new Error("the service worker did not install"));
      });
    });
  }

  button.addEventListener("click", async function () {
    button.disabled = true;
    try {
      if (await Notification.requestPermission() !== "granted") throw new Error("denied");
      const reg = await activated(await navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" }));
      const sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key(button.dataset.key) });
      const res = await fetch("/app/push", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: JSON.stringify(sub) });
      if (!res.ok) throw new Error("HTTP " + res.status);
      status.textContent = button.dataset.on;
    } catch (e) {
      status.textContent = button.dataset.failed;
      button.disabled = false;
    }
  });
})();
