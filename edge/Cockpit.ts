// The cockpit (ui/, ADR 0040): its built static files served at `/` and `/assets/*` under a strict
// Content-Security-Policy, and, on a dev stack, the dev token offered to a page loaded from this machine.
import { existsSync } from "node:fs"
import { readFile } from "node:fs/promises"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { Config, Effect, Layer, Option, Stream } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import * as Sse from "../schema/Sse.ts"
import * as Bootstrap from "./Bootstrap.ts"
import * as CockpitReload from "./CockpitReload.ts"
import { sseResponse } from "./Events.ts"
import { errorResponse } from "./Http.ts"

/**
 * Only files of this origin run, and nothing inline: no inline script, style or event handler, no eval, no
 * plugin, no framing. The page talks to this origin alone (HTTP and SSE).
 */
export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join("; ")

const SECURITY = {
  "content-security-policy": CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin"
}

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".json": "application/json",
  ".map": "application/json"
}

/**
 * Where the build is: LANTERN_UI_DIR, else `ui/dist` of the checkout this code runs from (the source tree, or the
 * bundle in `.lantern-build/<id>/`), found by walking up to the folder that holds `ui/`.
 */
const defaultDir = () => {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, "ui", "package.json")) || existsSync(join(dir, "ui", "index.html"))) {
      return join(dir, "ui", "dist")
    }
    dir = dirname(dir)
  }
  return resolve("ui", "dist")
}

const notBuilt = (dir: string) =>
  HttpServerResponse.text(
    `The cockpit is not built: ${dir} has no index.html. Run \`npm run build:ui\` (npm run dev and npm test build it when needed).\n`,
    { status: 503, headers: SECURITY }
  )

/** A file of the build, or null when it is not there. Names are Vite's (`name-hash.ext`): nothing else is served. */
const read = (dir: string, name: string) =>
  Effect.promise(() => readFile(join(dir, name)).then((b) => new Uint8Array(b), () => null))

const extOf = (name: string) => name.slice(name.lastIndexOf("."))

const isLoopback = (address: string) => /^(127\.|::1$|::ffff:127\.)/.test(address)
const LOOPBACK_HOST = /^(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/

export interface Options {
  /** Offer the dev token to pages loaded from this machine (`lantern dev` only). */
  readonly devToken: boolean
  /** Rebuild the cockpit when ui/src changes and reload its pages (`lantern dev` only; ADR 0064). */
  readonly hotReload?: boolean | undefined
}

/** Where a page of `lantern dev` hears of a rebuild: named by a meta tag added to the page there, and only there. */
export const RELOAD_PATH = "/__dev/reload"
const RELOAD_META = new TextEncoder().encode(`<meta name="lantern-dev-reload" content="${RELOAD_PATH}" />\n  `)

/** `html` with the reload meta tag before its `</head>` (a tag, not a script: the policy stays as it is). */
const withReloadMeta = (html: Uint8Array): Uint8Array => {
  const text = new TextDecoder().decode(html)
  const at = text.indexOf("</head>")
  if (at < 0) return html
  const head = new TextEncoder().encode(text.slice(0, at))
  const tail = new TextEncoder().encode(text.slice(at))
  const out = new Uint8Array(head.length + RELOAD_META.length + tail.length)
  out.set(head, 0)
  out.set(RELOAD_META, head.length)
  out.set(tail, head.length + RELOAD_META.length)
  return out
}

export const layer = (options: Options) =>
  Layer.unwrap(Effect.gen(function*() {
    const dir = yield* Config.String("LANTERN_UI_DIR").pipe(
      Config.map((d) => resolve(d)),
      Config.withDefault(defaultDir())
    )
    const home = yield* Config.String("LANTERN_HOME").pipe(Config.withDefault(".lantern"))
    const reloader = options.hotReload === true ? yield* CockpitReload.make(dir) : Option.none()

    const index = Effect.gen(function*() {
      const built = yield* read(dir, "index.html")
      if (built === null) return notBuilt(dir)
      const html = Option.isSome(reloader) ? withReloadMeta(built) : built
      return HttpServerResponse.uint8Array(html, {
        contentType: TYPES[".html"]!,
        headers: { ...SECURITY, "cache-control": "no-cache" }
      })
    })

    const asset = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const name = new URL(request.url, "http://localhost").pathname.slice("/assets/".length)
      const type = TYPES[extOf(name)]
      if (!/^[A-Za-z0-9_.-]+$/.test(name) || name.startsWith(".") || type === undefined) {
        return errorResponse(404, "not_found", "no such route")
      }
      const bytes = yield* read(join(dir, "assets"), name)
      if (bytes === null) return errorResponse(404, "not_found", "no such route")
      // Vite names every asset by the hash of its content
      return HttpServerResponse.uint8Array(bytes, {
        contentType: type,
        headers: { ...SECURITY, "cache-control": "public, max-age=31536000, immutable" }
      })
    })

    /**
     * The dev stack's owner token, for the sign-in form's "use the dev token": only on `lantern dev`, only to a
     * peer on this machine that named this machine in Host (a page of another site resolving to 127.0.0.1 does
     * not), and only to a same-origin fetch. Anywhere else the route does not exist.
     */
    const devToken = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const peer = Option.getOrElse(request.remoteAddress, () => "")
      const site = request.headers["sec-fetch-site"]
      if (
        !options.devToken || !isLoopback(peer) || !LOOPBACK_HOST.test(request.headers["host"] ?? "") ||
        (site !== undefined && site !== "same-origin")
      ) return errorResponse(404, "not_found", "no such route")
      const token = Bootstrap.readCredentials(Bootstrap.credentialsFile(home))["LANTERN_API_TOKEN"]
      if (token === undefined) return errorResponse(404, "not_found", "no such route")
      return HttpServerResponse.jsonUnsafe({ token }, { headers: { "cache-control": "no-store" } })
    })

    /** Each rebuild as a `reload` frame, for the pages of `lantern dev`; no such route anywhere else. */
    const reload = Effect.gen(function*() {
      if (Option.isNone(reloader)) return errorResponse(404, "not_found", "no such route")
      const frame = (event: string, n: number) => new TextEncoder().encode(Sse.encode({ event, data: String(n) }))
      return sseResponse(
        frame("ready", 0),
        Stream.fromPubSub(reloader.value.rebuilt).pipe(Stream.map((n) => frame("reload", n))),
        { headers: SECURITY }
      )
    })

    return Layer.mergeAll(
      HttpRouter.add("GET", "/", index),
      HttpRouter.add("GET", RELOAD_PATH, reload),
      HttpRouter.add("GET", "/assets/*", asset),
      HttpRouter.add("GET", "/cockpit/dev-token", devToken)
    )
  }))
