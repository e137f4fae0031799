// Task artifacts over HTTP (issue 16, ADR 0057): served from the Object Store, whichever host stored them.
import { extname } from "node:path"
import { Effect } from "effect"
import { HttpServerResponse } from "effect/http"
import { Artifacts } from "../actors/task/Artifacts.ts"
import { ArtifactNotFound } from "./ArtifactApi.ts"
import { handlers } from "./Serve.ts"

const TYPES: Readonly<Record<string, string>> = {
  ".md": "text/markdown; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".log": "text/plain; charset=utf-8",
  ".json": "application/json",
  ".csv": "text/csv; charset=utf-8",
  ".html": "text/plain; charset=utf-8",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".pdf": "application/pdf"
}

/** The artifact's media type by its extension; HTML is served as text, so an artifact never runs in the cockpit's origin. */
export const contentTypeOf = (path: string): string => TYPES[extname(path).toLowerCase()] ?? "application/octet-stream"

export const artifactHandlers = handlers({
  getTaskArtifact: ({ tenant, params: { id, path } }) =>
    Effect.gen(function*() {
      const bytes = yield* Artifacts.use((a) => a.get(tenant, id, path))
      if (bytes === null) return yield* new ArtifactNotFound({ taskId: id, path })
      return HttpServerResponse.uint8Array(bytes, {
        contentType: contentTypeOf(path),
        headers: { "x-content-type-options": "nosniff", "content-disposition": "inline" }
      })
    })
})
