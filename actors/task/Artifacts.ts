// Task artifacts (issue 16, ADR 0057): the files an attempt produced, kept in the JetStream Object Store bucket
// `lantern-artifacts` under `<tenant>/<taskId>/<path>`, so any host serves them after the worker's host is gone.
// `collect` uploads what a verified outcome lists from the task's artifact root; paths are relative and stay inside.
import { readFileSync, realpathSync, statSync } from "node:fs"
import { isAbsolute, relative, sep } from "node:path"
import { Config, Context, Data, Effect, Layer } from "effect"
import * as Objects from "../../bus/Objects.ts"
import type { BusUnavailable } from "../../schema/Errors.ts"
import * as Evidence from "./Evidence.ts"

export const BUCKET = "lantern-artifacts"
export const MAX_PATH = 1024
export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024

/** A path that is not a plain relative path inside the task's root, or a file that cannot be stored. */
export class ArtifactRefused extends Data.TaggedError("ArtifactRefused")<{
  readonly path: string
  readonly reason: string
}> {
  override get message() {
    return `artifact ${this.path.slice(0, 200)}: ${this.reason}`
  }
}

export interface Entry {
  readonly path: string
  readonly size: number
  readonly storedAt: string
}

/** Why `path` is not an artifact path (relative, `/`-separated, no `..`, `.` or empty segment), or null. */
export const pathProblem = (path: string): string | null => {
  if (path.length === 0 || path.length > MAX_PATH) return `Expected 1 to ${MAX_PATH} characters`
  if (path.includes("\0") || path.includes("\\")) return "Expected no NUL byte or backslash"
  if (isAbsolute(path)) return "Expected a relative path"
  const segments = path.split("/")
  if (segments.includes("..")) return "Expected no '..' segment"
  if (segments.some((s) => s === "" || s === ".")) return "Expected no empty or '.' segment"
  return null
}

const nameOf = (tenant: string, taskId: string, path: string) => `${tenant}/${taskId}/${path}`

export class Artifacts extends Context.Service<Artifacts, {
  readonly put: (
    tenant: string,
    taskId: string,
    path: string,
    bytes: Uint8Array
  ) => Effect.Effect<Entry, ArtifactRefused | BusUnavailable>
  /** The artifact's bytes, or null when the task has none at that path. */
  readonly get: (tenant: string, taskId: string, path: string) => Effect.Effect<Uint8Array | null, BusUnavailable>
  /** The task's artifacts, by path. */
  readonly list: (tenant: string, taskId: string) => Effect.Effect<ReadonlyArray<Entry>, BusUnavailable>
  /**
   * Uploads `paths` (relative to `artifactRoot`, as a verified outcome lists them) and answers what it stored;
   * a path outside the root (by `..`, absolutely or through a symlink), a missing file or one too large is refused.
   */
  readonly collect: (
    tenant: string,
    taskId: string,
    artifactRoot: string,
    paths: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<Entry>, ArtifactRefused | BusUnavailable>
}>()("lantern/actors/task/Artifacts") {
  static readonly layer = Layer.effect(
    Artifacts,
    Effect.gen(function*() {
      const maxBytes = yield* Config.Int("LANTERN_ARTIFACT_MAX_BYTES").pipe(Config.withDefault(DEFAULT_MAX_BYTES))
      const store = yield* Objects.open(BUCKET)

      const checked = (path: string) => {
        const problem = pathProblem(path)
        return problem === null ? Effect.void : Effect.fail(new ArtifactRefused({ path, reason: problem }))
      }

      const put = (tenant: string, taskId: string, path: string, bytes: Uint8Array) =>
        Effect.gen(function*() {
          yield* checked(path)
          if (bytes.byteLength > maxBytes) {
            return yield* new ArtifactRefused({
              path,
              reason: `${bytes.byteLength} bytes, more than LANTERN_ARTIFACT_MAX_BYTES (${maxBytes})`
            })
          }
          const info = yield* store.put(nameOf(tenant, taskId, path), bytes)
          return { path, size: info.size, storedAt: info.storedAt }
        })

      const get = (tenant: string, taskId: string, path: string) =>
        pathProblem(path) !== null
          ? Effect.succeed(null)
          : store.get(nameOf(tenant, taskId, path))

      const list = (tenant: string, taskId: string) => {
        const prefix = `${tenant}/${taskId}/`
        return Effect.map(
          store.list(prefix),
          (infos) => infos.map((i) => ({ path: i.name.slice(prefix.length), size: i.size, storedAt: i.storedAt }))
        )
      }

      const readInside = (root: string, path: string) =>
        Effect.gen(function*() {
          yield* checked(path)
          const inside = Evidence.resolveInside(root, path)
          if (!inside.ok) return yield* new ArtifactRefused({ path, reason: inside.issue.message })
          return yield* Effect.try({
            try: () => {
              const realRoot = realpathSync(root)
              const real = realpathSync(inside.absolute)
              const rel = relative(realRoot, real)
              if (rel === "" || rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
                throw new Error("it links out of the artifact root")
              }
              const size = statSync(real).size
              if (size > maxBytes) throw new Error(`${size} bytes, more than LANTERN_ARTIFACT_MAX_BYTES (${maxBytes})`)
              return new Uint8Array(readFileSync(real))
            },
            catch: (e) =>
              new ArtifactRefused({
                path,
                reason: (e as NodeJS.ErrnoException).code === "ENOENT"
                  ? "no such file in the artifact root"
                  : (e as Error).message
              })
          })
        })

      const collect = (tenant: string, taskId: string, artifactRoot: string, paths: ReadonlyArray<string>) =>
        Effect.forEach(
          [...new Set(paths)],
          (path) => Effect.flatMap(readInside(artifactRoot, path), (bytes) => put(tenant, taskId, path, bytes))
        )

      return Artifacts.of({ put, get, list, collect })
    })
  )
}
