// The web app's service worker: shows a notification for each push (a new
// message while none of the person's sockets was open) and opens its chat
// when clicked. No framework, no build step.
"use strict";

self.addEventListener("push", function (event) {
  let p = {};
  try { p = event.data ? event.data.json() : {}; } catch (e) { /* an empty push still says something arrived */ }
  const title = p.title || "New message";
  event.waitUntil(self.registration.showNotification(title, {
    body: p.text || "",
    tag: p.conversationId || "imbee",
    data: { url: p.conversationId ? "/app/c/" + p.conversationId : "/app" },
  }));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  event.waitUntil(self.clients.openWindow(event.notification.data.url));
});
