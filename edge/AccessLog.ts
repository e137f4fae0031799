// The edge's access log (ADR 0080): a line per request at debug, a failure's cause at error, a 5xx at warning.
// effect's own logger middleware writes every response at info; at 200 runs in flight that is two lines a run,
// each formatted and written to stdout on the thread that drives runs.
import { Cause, Effect, Option } from "effect"
import { HttpServerError, HttpServerRequest, type HttpServerResponse } from "effect/http"

/** The request's path without its query (which may carry a cursor or a webchat widget's key). */
const pathOf = (url: string) => {
  const end = url.search(/[?#]/)
  return end === -1 ? url : url.slice(0, end)
}

/** A cause made only of the client going away: not a failure of the edge. */
const clientAborted = (cause: Cause.Cause<unknown>) =>
  cause.reasons.every((r) => r._tag === "Interrupt" && r.annotations.has(HttpServerError.ClientAbort.key))

/**
 * Logs a request once it is answered: at debug when it was answered below 500, at warning with a 5xx, and the
 * cause at error when the handler failed or died with a 5xx (a client that went away, or a failure answered below
 * 500 such as an unknown route, at debug).
 */
export const accessLog = <E, R>(
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    return yield* Effect.withLogSpan(
      Effect.flatMap(Effect.exit(app), (exit) => {
        const at = (status: number) => ({
          "http.method": request.method,
          "http.url": pathOf(request.url),
          "http.status": status
        })
        if (exit._tag === "Success") {
          const status = exit.value.status
          const log = status >= 500 ? Effect.logWarning : Effect.logDebug
          return Effect.andThen(Effect.annotateLogs(log("Sent HTTP response"), at(status)), exit)
        }
        const [response, cause] = HttpServerError.causeResponseStripped(exit.cause)
        const failed = Option.isSome(cause) && !clientAborted(cause.value) ? cause.value : null
        const log = failed === null
          ? Effect.logDebug("Sent HTTP response")
          : response.status >= 500
          ? Effect.logError(failed)
          : Effect.logDebug(failed)
        return Effect.andThen(Effect.annotateLogs(log, at(response.status)), exit)
      }),
      "http.span"
    )
  })
