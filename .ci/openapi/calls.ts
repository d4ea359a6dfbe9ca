// Every operation of docs/openapi.json, called through openapi-fetch with
// the types openapi-typescript generates from it on its default options
// (check.sh): once with only the required fields, once with every field.
// tsc --noEmit must accept both: a call that does not type-check means
// integrators' generated clients cannot make it, and an optional field
// that the types make required fails the first set.
//
// `Calls` demands an entry for every path and method the document lists,
// and no other: a new operation must be added here before CI passes.
import createClient from "openapi-fetch";
import type { paths } from "./api";

type Method = "get" | "put" | "post" | "delete" | "options" | "head" | "patch" | "trace";
type Operations<Item> = {
  [M in Method & keyof Item as [NonNullable<Item[M]>] extends [never] ? never : M]: () => Promise<unknown>;
};
type Calls = { [P in keyof paths]: Operations<paths[P]> };

const api = createClient<paths>({ baseUrl: "https://chat.example.com" });

const id = "0e4f5a6b7c8d9e0f68decf7f5b7c4d2e9a0b1c2d";
const socket = { Connection: "Upgrade", Upgrade: "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==" } as const;
const token = "imbl_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const key = { "Idempotency-Key": "3f1c2a9e-7b4d-4e21-9d0a-5c6b7e8f9a01" };
const pass = "imbp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const p256dh = "BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
// The sign-in form is posted as a browser posts it.
const form = (body: Record<string, string>) => new URLSearchParams(body).toString();

export const required: Calls = {
  "/third_parties/user/new": { post: () => api.POST("/third_parties/user/new", { body: { uniqueIdSha: "u" } }) },
  "/third_parties/user/bulk": { post: () => api.POST("/third_parties/user/bulk", { body: { users: [{ uniqueIdSha: "u" }] } }) },
  "/third_parties/user/rotate": { post: () => api.POST("/third_parties/user/rotate", { body: { uniqueIdSha: "u" } }) },
  "/token/new": { post: () => api.POST("/token/new", { body: { virtual_user: "u", bot_idsha: id, mail: "ana@example.com" } }) },
  "/token/status": { post: () => api.POST("/token/status", { body: { url: token } }) },
  "/token/revoke": { post: () => api.POST("/token/revoke", { body: { url: token } }) },
  "/chat/create": { post: () => api.POST("/chat/create", { body: { type: "chat", contacts: [{ idsha: id }] } }) },
  "/chat/message/send": { post: () => api.POST("/chat/message/send", { body: { conversationId: id, text: "hello" } }) },
  "/chat/message/list": { post: () => api.POST("/chat/message/list", { body: { conversationId: id } }) },
  "/chat/list": { post: () => api.POST("/chat/list", { body: {} }) },
  "/chat/read": { post: () => api.POST("/chat/read", { body: { conversationId: id, seq: 3 } }) },
  "/bot/message/send": { post: () => api.POST("/bot/message/send", { body: { bot_idsha: id, conversationId: id, text: "hello" } }) },
  "/bot/webhook": { post: () => api.POST("/bot/webhook", { body: { bot_idsha: id } }) },
  "/chat/socket": { get: () => api.GET("/chat/socket", { params: { query: { conversationId: id }, header: socket } }) },
  "/openapi.json": { get: () => api.GET("/openapi.json"), head: () => api.HEAD("/openapi.json") },
  "/healthz": { get: () => api.GET("/healthz") },
  "/readyz": { get: () => api.GET("/readyz") },
  "/metrics": { get: () => api.GET("/metrics") },
  "/l/{token}": {
    get: () => api.GET("/l/{token}", { params: { path: { token } } }),
    head: () => api.HEAD("/l/{token}", { params: { path: { token } } }),
    post: () => api.POST("/l/{token}", { params: { path: { token } } }),
  },
  "/w/{conversation}": {
    get: () => api.GET("/w/{conversation}", { params: { path: { conversation: id } } }),
    head: () => api.HEAD("/w/{conversation}", { params: { path: { conversation: id } } }),
  },
  "/w/{conversation}/messages": {
    get: () => api.GET("/w/{conversation}/messages", { params: { path: { conversation: id } } }),
    head: () => api.HEAD("/w/{conversation}/messages", { params: { path: { conversation: id } } }),
    post: () => api.POST("/w/{conversation}/messages", { params: { path: { conversation: id } }, body: { text: "hello" } }),
  },
  "/w/{conversation}/socket": {
    get: () => api.GET("/w/{conversation}/socket", { params: { path: { conversation: id } } }),
    head: () => api.HEAD("/w/{conversation}/socket", { params: { path: { conversation: id } } }),
  },
  "/app": {
    get: () => api.GET("/app"),
    head: () => api.HEAD("/app"),
    post: () => api.POST("/app", { body: { virtualUser: id, pass }, bodySerializer: form }),
  },
  "/app/signout": { post: () => api.POST("/app/signout") },
  "/app/chats": { post: () => api.POST("/app/chats", { body: { bot: id }, bodySerializer: form }) },
  "/app/push": { post: () => api.POST("/app/push", { body: { endpoint: "https://push.example.net/s/1", keys: { p256dh: p256dh, auth: "AAAAAAAAAAAAAAAAAAAAAA" } } }) },
  "/app/push/off": { post: () => api.POST("/app/push/off", { body: { endpoint: "https://push.example.net/s/1" } }) },
  "/app/sw.js": { get: () => api.GET("/app/sw.js"), head: () => api.HEAD("/app/sw.js") },
  "/app/c/{conversation}": {
    get: () => api.GET("/app/c/{conversation}", { params: { path: { conversation: id } } }),
    head: () => api.HEAD("/app/c/{conversation}", { params: { path: { conversation: id } } }),
  },
  "/app/c/{conversation}/messages": {
    get: () => api.GET("/app/c/{conversation}/messages", { params: { path: { conversation: id } } }),
    head: () => api.HEAD("/app/c/{conversation}/messages", { params: { path: { conversation: id } } }),
    post: () => api.POST("/app/c/{conversation}/messages", { params: { path: { conversation: id } }, body: { text: "hello" } }),
  },
  "/app/c/{conversation}/socket": {
    get: () => api.GET("/app/c/{conversation}/socket", { params: { path: { conversation: id } } }),
    head: () => api.HEAD("/app/c/{conversation}/socket", { params: { path: { conversation: id } } }),
  },
  "/w/{conversation}/read": { post: () => api.POST("/w/{conversation}/read", { params: { path: { conversation: id } }, body: { seq: 12 } }) },
  "/app/c/{conversation}/read": { post: () => api.POST("/app/c/{conversation}/read", { params: { path: { conversation: id } }, body: { seq: 12 } }) },
  "/assets/{file}": {
    get: () => api.GET("/assets/{file}", { params: { path: { file: "chat.js" } } }),
    head: () => api.HEAD("/assets/{file}", { params: { path: { file: "chat.css" } } }),
  },
  "/favicon.ico": { get: () => api.GET("/favicon.ico") },
};

export const all: Calls = {
  "/third_parties/user/new": {
    post: () => api.POST("/third_parties/user/new", {
      params: { header: key },
      body: { uniqueIdSha: "u", platform: "ios", deviceName: "phone", hardwareId: "hw", osVersion: "18" },
    }),
  },
  "/third_parties/user/bulk": {
    post: () => api.POST("/third_parties/user/bulk", {
      params: { header: key },
      body: { users: [{ uniqueIdSha: "u", platform: "ios", deviceName: "phone", hardwareId: "hw", osVersion: "18" }] },
    }),
  },
  "/third_parties/user/rotate": { post: () => api.POST("/third_parties/user/rotate", { params: { header: key }, body: { uniqueIdSha: "u" } }) },
  "/token/new": {
    post: () => api.POST("/token/new", {
      params: { header: key },
      body: {
        virtual_user: "u", virutal_user: "u", bot_idsha: id, mail: "ana@example.com",
        celullar: "+34600111222", cellular: "+34600111222", max_retries: "10", date_limit: "2026-12-31",
      },
    }),
  },
  "/token/status": { post: () => api.POST("/token/status", { body: { url: `https://chat.example.com/l/${token}` } }) },
  "/token/revoke": { post: () => api.POST("/token/revoke", { params: { header: key }, body: { url: token, virtual_user: "u" } }) },
  "/chat/create": {
    post: () => api.POST("/chat/create", {
      params: { header: key },
      body: { type: "group", contacts: [{ idsha: id }, { bot_idsha: id }], name: "team" },
    }),
  },
  "/chat/message/send": {
    post: () => api.POST("/chat/message/send", { params: { header: key }, body: { conversationId: id, text: "hello", clientMsgId: "c-1" } }),
  },
  "/chat/message/list": {
    post: () => api.POST("/chat/message/list", { body: { conversationId: id, afterSeq: 0, beforeSeq: "12", limit: 50 } }),
  },
  "/chat/list": { post: () => api.POST("/chat/list", { body: { limit: 100 } }) },
  "/chat/read": { post: () => api.POST("/chat/read", { body: { conversationId: id, seq: "3" } }) },
  "/bot/message/send": {
    post: () => api.POST("/bot/message/send", {
      params: { header: key },
      body: { bot_idsha: id, conversationId: id, text: "hello", clientMsgId: "msg_1" },
    }),
  },
  "/bot/webhook": { post: () => api.POST("/bot/webhook", { params: { header: key }, body: { bot_idsha: id, url: "https://bot.example.com/hook" } }) },
  "/chat/socket": {
    get: () => api.GET("/chat/socket", { params: { query: { conversationId: id, afterSeq: 12 }, header: socket } }),
  },
  "/openapi.json": { get: () => api.GET("/openapi.json"), head: () => api.HEAD("/openapi.json") },
  "/healthz": { get: () => api.GET("/healthz") },
  "/readyz": { get: () => api.GET("/readyz") },
  "/metrics": { get: () => api.GET("/metrics") },
  "/l/{token}": {
    get: () => api.GET("/l/{token}", { params: { path: { token } } }),
    head: () => api.HEAD("/l/{token}", { params: { path: { token } } }),
    post: () => api.POST("/l/{token}", { params: { path: { token } } }),
  },
  "/w/{conversation}": {
    get: () => api.GET("/w/{conversation}", { params: { path: { conversation: id } } }),
    head: () => api.HEAD("/w/{conversation}", { params: { path: { conversation: id } } }),
  },
  "/w/{conversation}/messages": {
    get: () => api.GET("/w/{conversation}/messages", { params: { path: { conversation: id }, query: { before: 12 } } }),
    head: () => api.HEAD("/w/{conversation}/messages", { params: { path: { conversation: id } } }),
    post: () => api.POST("/w/{conversation}/messages", { params: { path: { conversation: id } }, body: { text: "hello", clientMsgId: "c-2" } }),
  },
  "/w/{conversation}/socket": {
    get: () => api.GET("/w/{conversation}/socket", { params: { path: { conversation: id }, query: { after: 12 } } }),
    head: () => api.HEAD("/w/{conversation}/socket", { params: { path: { conversation: id } } }),
  },
  "/app": {
    get: () => api.GET("/app"),
    head: () => api.HEAD("/app"),
    post: () => api.POST("/app", { body: { virtualUser: id, pass }, bodySerializer: form }),
  },
  "/app/signout": { post: () => api.POST("/app/signout") },
  "/app/chats": { post: () => api.POST("/app/chats", { body: { bot: id }, bodySerializer: form }) },
  "/app/push": { post: () => api.POST("/app/push", { body: { endpoint: "https://push.example.net/s/1", expirationTime: null, keys: { p256dh: p256dh, auth: "AAAAAAAAAAAAAAAAAAAAAA" } } }) },
  "/app/push/off": { post: () => api.POST("/app/push/off", { body: { endpoint: "https://push.example.net/s/1" } }) },
  "/app/sw.js": { get: () => api.GET("/app/sw.js"), head: () => api.HEAD("/app/sw.js") },
  "/app/c/{conversation}": {
    get: () => api.GET("/app/c/{conversation}", { params: { path: { conversation: id } } }),
    head: () => api.HEAD("/app/c/{conversation}", { params: { path: { conversation: id } } }),
  },
  "/app/c/{conversation}/messages": {
    get: () => api.GET("/app/c/{conversation}/messages", { params: { path: { conversation: id }, query: { before: 12 } } }),
    head: () => api.HEAD("/app/c/{conversation}/messages", { params: { path: { conversation: id } } }),
    post: () => api.POST("/app/c/{conversation}/messages", { params: { path: { conversation: id } }, body: { text: "hello", clientMsgId: "c-2" } }),
  },
  "/app/c/{conversation}/socket": {
    get: () => api.GET("/app/c/{conversation}/socket", { params: { path: { conversation: id }, query: { after: 12 } } }),
    head: () => api.HEAD("/app/c/{conversation}/socket", { params: { path: { conversation: id } } }),
  },
  "/w/{conversation}/read": { post: () => api.POST("/w/{conversation}/read", { params: { path: { conversation: id } }, body: { seq: 12 } }) },
  "/app/c/{conversation}/read": { post: () => api.POST("/app/c/{conversation}/read", { params: { path: { conversation: id } }, body: { seq: 12 } }) },
  "/assets/{file}": {
    get: () => api.GET("/assets/{file}", { params: { path: { file: "chat.js" } } }),
    head: () => api.HEAD("/assets/{file}", { params: { path: { file: "chat.css" } } }),
  },
  "/favicon.ico": { get: () => api.GET("/favicon.ico") },
};
