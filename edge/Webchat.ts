// The webchat channel (ADR 0053): a small widget served by the edge (`/chat/{channelId}/widget.js`) that a page on an
// allowed origin embeds with the channel's public widget key. A visitor's messages are turns of their own session
// (`POST /chat/{channelId}/messages`), and the conversation comes back over SSE (`/chat/{channelId}/stream`). Every
// request is checked against the channel's origin allowlist (the browser's Origin header) and its widget key;
// a refusal is 403 or 401, without CORS headers, and audited as `hook.rejected`. While a turn's run answers, its
// live tokens come on the same stream (ADR 0061); the journaled answer replaces them.
import { Effect, Layer, Option, Queue, Stream } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { Audit } from "../actors/audit/Audit.ts"
import { type Channel, Channels } from "../actors/channel/Channels.ts"
import { Sessions, sessionIdOf } from "../actors/channel/Sessions.ts"
import * as Verify from "../actors/channel/Verify.ts"
import { Tokens } from "../bus/Tokens.ts"
import * as Sse from "../schema/Sse.ts"
import * as TokenFrames from "../schema/Tokens.ts"
import { sseResponse } from "./Events.ts"
import { deduplicated } from "./Hooks.ts"
import { errorResponse } from "./Http.ts"

/** The largest message body a visitor may post. */
export const WIDGET_MAX_BYTES = 16 * 1024
const VISITOR = /^[a-z0-9]{16,64}$/u

const refuse = (channel: Channel, status: 401 | 403, reason: string) =>
  Effect.gen(function*() {
    yield* (yield* Audit).record({
      tenant: channel.tenant,
      action: "hook.rejected",
      actor: "platform:webchat",
      target: `channel:${channel.id}`,
      outcome: "denied",
      detail: { reason }
    })
    return errorResponse(status, status === 401 ? "unauthorized" : "forbidden", reason)
  })

const cors = (origin: string) => ({
  "access-control-allow-origin": origin,
  vary: "Origin"
})

/** The webchat channel of the route, and the request's origin when the channel allows it. */
const admitted = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const { channelId = "" } = yield* HttpRouter.params
  const found = yield* (yield* Channels).find(channelId).pipe(Effect.orElseSucceed(() => Option.none<Channel>()))
  if (Option.isNone(found) || found.value.kind !== "webchat") {
    return { _tag: "Refused" as const, response: errorResponse(404, "channel_not_found", "no such chat") }
  }
  const channel = found.value
  const origin = request.headers["origin"]
  if (origin === undefined || !(channel.config.allowedOrigins ?? []).includes(origin)) {
    return {
      _tag: "Refused" as const,
      response: yield* refuse(
        channel,
        403,
        origin === undefined ? "no Origin header" : `origin ${origin.slice(0, 200)} is not allowed`
      )
    }
  }
  return { _tag: "Admitted" as const, channel, origin }
})

const keyMatches = (channel: Channel, key: string | null | undefined) =>
  typeof key === "string" && channel.config.widgetKey !== undefined && Verify.same(key, channel.config.widgetKey)

const preflight = Effect.gen(function*() {
  const a = yield* admitted
  if (a._tag === "Refused") return a.response
  return HttpServerResponse.empty({
    status: 204,
    headers: {
      ...cors(a.origin),
      "access-control-allow-methods": "POST, GET",
      "access-control-allow-headers": "content-type",
      "access-control-max-age": "600"
    }
  })
})

const message = Effect.gen(function*() {
  const a = yield* admitted
  if (a._tag === "Refused") return a.response
  const { channel, origin } = a
  const request = yield* HttpServerRequest.HttpServerRequest
  const declared = request.headers["content-length"]
  if (declared !== undefined && Number(declared) > WIDGET_MAX_BYTES) {
    return errorResponse(
      413,
      "payload_too_large",
      `the request body exceeds ${WIDGET_MAX_BYTES} bytes`,
      undefined,
      cors(origin)
    )
  }
  const text = yield* request.text.pipe(Effect.orElseSucceed(() => ""))
  let body: Record<string, unknown>
  try {
    const parsed = JSON.parse(text) as unknown
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not an object")
    body = parsed as Record<string, unknown>
  } catch {
    return errorResponse(400, "invalid_request", "the request is invalid", [{
      field: "(body)",
      message: "Expected a JSON object"
    }], cors(origin))
  }
  if (!keyMatches(channel, body["key"] as string | undefined)) return yield* refuse(channel, 401, "widget key mismatch")
  const visitor = body["visitor"]
  const said = body["text"]
  const invalid = (field: string, msg: string) =>
    errorResponse(400, "invalid_request", "the request is invalid", [{ field, message: msg }], cors(origin))
  if (typeof visitor !== "string" || !VISITOR.test(visitor))
    return invalid("visitor", "Expected 16-64 lowercase letters or digits")
  if (typeof said !== "string" || said.trim() === "" || said.length > 4000)
    return invalid("text", "Expected 1-4000 characters")
  const eventId = typeof body["messageId"] === "string" && /^[\x21-\x7e]{1,100}$/.test(body["messageId"])
    ? `webchat:${body["messageId"]}`
    : `webchat:${visitor}:${Date.now()}:${Math.random().toString(36).slice(2)}`
  const received = yield* (yield* Sessions).receive(channel, {
    eventId,
    thread: visitor,
    text: said,
    from: `webchat:${visitor}`,
    reply: {}
  }).pipe(Effect.result)
  if (received._tag === "Failure") {
    return errorResponse(503, "unavailable", "try again", undefined, { ...cors(origin), "retry-after": "1" })
  }
  if (received.success.duplicate) yield* deduplicated(channel, eventId, received.success.sessionId)
  return HttpServerResponse.jsonUnsafe(received.success, { status: 202, headers: cors(origin) })
})

const encoder = new TextEncoder()

/** The visitor's conversation: each message and answer as an SSE `message` frame `{turn, role, text}`. */
const stream = Effect.gen(function*() {
  const a = yield* admitted
  if (a._tag === "Refused") return a.response
  const { channel, origin } = a
  const request = yield* HttpServerRequest.HttpServerRequest
  const query = new URL(request.url, "http://localhost").searchParams
  if (!keyMatches(channel, query.get("key"))) return yield* refuse(channel, 401, "widget key mismatch")
  const visitor = query.get("visitor") ?? ""
  if (!VISITOR.test(visitor)) {
    return errorResponse(400, "invalid_request", "the request is invalid", [{
      field: "visitor",
      message: "Expected 16-64 lowercase letters or digits"
    }], cors(origin))
  }
  const sessions = yield* Sessions
  const id = sessionIdOf(channel.id, visitor)
  const after = Number(request.headers["last-event-id"] ?? "0")
  const journaled = yield* sessions.events(channel.tenant, id).pipe(Effect.orElseSucceed(() => []))
  const from = Number.isInteger(after) && after > 0 ? Math.min(after, journaled.length) : 0
  const afterSeq = from === 0 ? 0 : journaled[from - 1]!.seq
  // the turn whose run is answering, as the session's events say: its tokens are followed until it is answered
  const answered = new Set(journaled.flatMap((s) => (s.event._tag === "TurnAnswered" ? [s.event.turn] : [])))
  const answering = yield* Queue.unbounded<{ readonly turn: number; readonly runId: string } | null>()
  const pending = journaled.slice(0, from).findLast((s) => s.event._tag === "TurnRunStarted")?.event
  if (pending?._tag === "TurnRunStarted" && !answered.has(pending.turn)) Queue.offerUnsafe(answering, pending)
  const frames = sessions.follow(channel.tenant, id, afterSeq).pipe(
    Stream.zipWithIndex,
    Stream.tap(([s]) =>
      Effect.sync(() => {
        const e = s.event
        if (e._tag === "TurnRunStarted" && !answered.has(e.turn)) Queue.offerUnsafe(answering, e)
        if (e._tag === "TurnAnswered") Queue.offerUnsafe(answering, null)
      })
    ),
    Stream.map(([s, i]) => {
      const e = s.event
      const frame = e._tag === "TurnReceived"
        ? { turn: e.turn, role: "user", text: e.text }
        : e._tag === "TurnAnswered"
        ? { turn: e.turn, role: "assistant", text: e.text }
        : null
      // every event moves the position (the id), only messages and answers carry data
      return frame === null
        ? encoder.encode(Sse.encode({ id: String(from + i + 1), event: "position", data: "{}" }))
        : encoder.encode(Sse.encode({ id: String(from + i + 1), event: "message", data: JSON.stringify(frame) }))
    })
  )
  const tokens = yield* Tokens
  // frames without an id: the position a reconnection resumes from stays the last journaled event's
  const live = Stream.fromQueue(answering).pipe(
    Stream.switchMap((t) =>
      t === null ? Stream.empty : Stream.unwrap(tokens.follow(channel.tenant, t.runId)).pipe(
        Stream.map((f) =>
          encoder.encode(
            TokenFrames.isReset(f)
              ? Sse.encode({ event: "reset", data: JSON.stringify({ turn: t.turn }) })
              : Sse.encode({
                event: "token",
                data: JSON.stringify({ turn: t.turn, step: `${f.stepId}:${f.attempt}`, text: f.text })
              })
          )
        ),
        // tokens are a preview: a bus that fails them ends the preview, not the conversation
        Stream.catch(() => Stream.empty)
      )
    )
  )
  return sseResponse(
    encoder.encode(Sse.comment("lantern chat")),
    Stream.merge(frames, live, { haltStrategy: "left" }),
    { headers: cors(origin), errors: "silent" }
  )
})

/** The widget: plain DOM, no dependency; it finds its channel and key from its own script tag. */
export const WIDGET = `(() => {
  "use strict";
  const script = document.currentScript;
  const src = new URL(script.src);
  const match = /\\/chat\\/([^/]+)\\/widget\\.js$/.exec(src.pathname);
  if (match === null) return;
  const base = src.origin + "/chat/" + match[1];
  const key = script.dataset.key || "";
  const store = "lantern-chat-visitor-" + match[1];
  let visitor = null;
  try { visitor = localStorage.getItem(store); } catch (e) {}
  if (!visitor || !/^[a-z0-9]{16,64}$/.test(visitor)) {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    visitor = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    try { localStorage.setItem(store, visitor); } catch (e) {}
  }
  const root = document.createElement("div");
  root.className = "lantern-chat";
  root.setAttribute("data-testid", "lantern-chat");
  root.style.cssText = "font:14px system-ui,sans-serif;border:1px solid #ccc;border-radius:8px;padding:8px;max-width:360px";
  const list = document.createElement("ol");
  list.setAttribute("data-testid", "lantern-messages");
  list.style.cssText = "list-style:none;margin:0 0 8px;padding:0;max-height:320px;overflow:auto";
  const status = document.createElement("div");
  status.setAttribute("data-testid", "lantern-status");
  status.style.cssText = "color:#a00;font-size:12px";
  const form = document.createElement("form");
  const input = document.createElement("input");
  input.setAttribute("data-testid", "lantern-input");
  input.placeholder = "Type a message";
  input.style.cssText = "width:70%";
  const send = document.createElement("button");
  send.type = "submit";
  send.textContent = "Send";
  send.setAttribute("data-testid", "lantern-send");
  form.append(input, send);
  root.append(list, status, form);
  (script.parentElement || document.body).insertBefore(root, script.nextSibling);
  const shown = new Set();
  // answers growing token by token, per turn, until the journaled answer replaces them
  const growing = new Map();
  const show = (m) => {
    const id = m.turn + ":" + m.role;
    if (shown.has(id)) return;
    shown.add(id);
    const partial = m.role === "assistant" ? growing.get(m.turn) : undefined;
    const li = partial === undefined ? document.createElement("li") : partial.li;
    growing.delete(m.turn);
    li.className = "lantern-" + m.role;
    li.setAttribute("data-role", m.role);
    li.textContent = (m.role === "user" ? "You: " : "Agent: ") + m.text;
    if (partial === undefined) list.append(li);
    list.scrollTop = list.scrollHeight;
  };
  const grow = (t) => {
    if (shown.has(t.turn + ":assistant")) return;
    let g = growing.get(t.turn);
    if (g === undefined && t.reset === true) return;
    if (g === undefined) {
      const li = document.createElement("li");
      li.className = "lantern-assistant lantern-partial";
      li.setAttribute("data-role", "assistant-partial");
      li.setAttribute("aria-busy", "true");
      list.append(li);
      g = { li, step: null, text: "" };
      growing.set(t.turn, g);
    }
    // a new model step of the turn's run starts its text over; a reset voids the text so far
    if (t.reset === true || g.step !== t.step) g.text = "";
    g.step = t.step === undefined ? null : t.step;
    g.text += t.text || "";
    g.li.textContent = "Agent: " + g.text;
    list.scrollTop = list.scrollHeight;
  };
  let events = null;
  const listen = () => {
    if (events !== null) return;
    events = new EventSource(base + "/stream?key=" + encodeURIComponent(key) + "&visitor=" + visitor);
    events.addEventListener("message", (e) => show(JSON.parse(e.data)));
    events.addEventListener("token", (e) => grow(JSON.parse(e.data)));
    events.addEventListener("reset", (e) => grow(Object.assign(JSON.parse(e.data), { reset: true })));
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (text === "") return;
    input.value = "";
    status.textContent = "";
    try {
      const r = await fetch(base + "/messages", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ key, visitor, text, messageId: visitor + "-" + Date.now() })
      });
      if (!r.ok) { status.textContent = "Could not send (" + r.status + ")"; return; }
      listen();
    } catch (err) {
      status.textContent = "Could not send: this page may not use this chat";
    }
  });
})();
`

const widget = Effect.gen(function*() {
  const { channelId = "" } = yield* HttpRouter.params
  const found = yield* (yield* Channels).find(channelId).pipe(Effect.orElseSucceed(() => Option.none<Channel>()))
  if (Option.isNone(found) || found.value.kind !== "webchat") {
    return errorResponse(404, "channel_not_found", "no such chat")
  }
  return HttpServerResponse.text(WIDGET, {
    contentType: "application/javascript; charset=utf-8",
    headers: { "cache-control": "public, max-age=300", "access-control-allow-origin": "*" }
  })
})

export const routes = Layer.mergeAll(
  HttpRouter.add("GET", "/chat/:channelId/widget.js", widget),
  HttpRouter.add("OPTIONS", "/chat/:channelId/messages", preflight),
  HttpRouter.add("POST", "/chat/:channelId/messages", message),
  HttpRouter.add("GET", "/chat/:channelId/stream", stream)
)
