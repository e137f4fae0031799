// The declared endpoint of task artifacts (issue 16, ADR 0057), spread into the API's table (edge/Api.ts): the
// bytes of a file a task's attempt produced, from the JetStream Object Store.
import { Data, Schema } from "effect"
import { TaskId } from "../schema/Task.ts"
import { failure, make, Media } from "./Endpoint.ts"

/** The task has no artifact at that path (or there is no such task in the tenant). */
export class ArtifactNotFound extends Data.TaggedError("ArtifactNotFound")<{
  readonly taskId: string
  readonly path: string
}> {
  override get message() {
    return `task ${this.taskId} has no artifact ${this.path}`
  }
}

export const ArtifactMissing = failure<ArtifactNotFound>(
  "ArtifactNotFound",
  404,
  "artifact_not_found",
  "The task has no artifact at that path"
)

/** A relative path, `/`-separated (percent-encoded in the URL), with no `..`, `.` or empty segment. */
export const ArtifactPath = Schema.String.check(
  Schema.isPattern(/^(?![/])(?!.*(?:^|\/)\.{1,2}(?:\/|$))(?!.*\/\/)(?!.*\/$)[^\0\\]{1,1024}$/u, {
    message: "Expected a relative path (percent-encoded), no '..', '.' or empty segment, at most 1024 characters"
  })
)

const ByArtifact = Schema.Struct({ id: TaskId, path: ArtifactPath })

export const endpoints = [
  make("getTaskArtifact", {
    method: "GET",
    path: "/v1/tasks/:id/artifacts/:path",
    scope: "tasks:read",
    summary:
      "A file a task's attempt produced and its verified outcome listed, relative to the task's artifact root (`reports%2Fq3.md` for reports/q3.md); Content-Type by its extension",
    params: ByArtifact,
    success: { 200: Media("application/octet-stream", "The artifact's bytes") },
    failures: [ArtifactMissing]
  })
] as const
