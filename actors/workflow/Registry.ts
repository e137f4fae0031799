// Code-first workflows' code (ADR 0041). A host started with `--workflows <file>` (or LANTERN_WORKFLOWS) bundles
// the file with esbuild into one ES module, names that version by the SHA-256 of the bundle, stores the bundle on
// the bus (bus/Blobs.ts) and points each workflow it defines at that version (KV `lantern-workflows`). A run is
// pinned to the version current when it started; any host loads any version from the bus when it first drives a
// run of it, so a deploy of new code never strands a run in flight: old runs finish on their own code.
import { createHash } from "node:crypto"
import { mkdirSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { Config, Context, Effect, Layer, Option, Schedule, Schema, Stream } from "effect"
import { Blobs } from "../../bus/Blobs.ts"
import * as Kv from "../../bus/Kv.ts"
import type { BusUnavailable } from "../../schema/Errors.ts"
import type { WorkflowRef } from "../../schema/Events.ts"
import type { Context as WorkflowContext } from "./Context.ts"

/** What `defineWorkflow` (the SDK's, or any object so marked) exports. */
export interface Definition {
  readonly name: string
  readonly run: (ctx: WorkflowContext, input: unknown) => unknown
}

/** The mark `defineWorkflow` puts on a definition: `Symbol.for("lantern.workflow")`, shared across module copies. */
export const MARKER = Symbol.for("lantern.workflow")

export const WORKFLOWS_BUCKET = "lantern-workflows"
export const CODE_BUCKET = "lantern-workflow-code"

/** The version new runs of a workflow start on. */
const Current = Schema.Struct({ digest: Schema.String, registeredAt: Schema.String })
const currentBucket = Kv.bucket({
  name: WORKFLOWS_BUCKET,
  value: Schema.fromJsonString(Current),
  what: "a workflow registration"
})

/** A workflow's name as runs, URLs and the registry use it. */
export const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/

export class WorkflowCodeError extends Schema.TaggedError<WorkflowCodeError>()("WorkflowCodeError", {
  reason: Schema.String
}) {
  override get message() {
    return this.reason
  }
}

/** The definitions a loaded module exports (its default export may also be an array of them). */
export const definitionsOf = (module: Record<string, unknown>): ReadonlyArray<Definition> => {
  const out: Array<Definition> = []
  const visit = (v: unknown) => {
    if (Array.isArray(v)) return v.forEach(visit)
    if (typeof v === "object" && v !== null && (v as Record<symbol, unknown>)[MARKER] === true) {
      const d = v as Definition
      if (typeof d.name === "string" && typeof d.run === "function" && !out.some((x) => x === d)) out.push(d)
    }
  }
  for (const v of Object.values(module)) visit(v)
  return out
}

export class Registry extends Context.Service<Registry, {
  /** Bundles `file`, stores its version and makes its workflows current; the names it registered. */
  readonly register: (file: string) => Effect.Effect<ReadonlyArray<string>, WorkflowCodeError | BusUnavailable>
  /** The version new runs of `name` start on, or none when no host registered it. */
  readonly current: (name: string) => Effect.Effect<Option.Option<WorkflowRef>, BusUnavailable>
  /** The definition of `ref`, loading its code version from the bus if this host has not yet. */
  readonly load: (ref: WorkflowRef) => Effect.Effect<Definition, WorkflowCodeError | BusUnavailable>
}>()("lantern/actors/workflow/Registry") {
  static readonly layer = Layer.effect(
    Registry,
    Effect.gen(function*() {
      const blobs = yield* Blobs
      const current = yield* Kv.open(currentBucket)
      /**
       * Each workflow's current version as one watch of the bucket sees it (null: removed), with the revision it was
       * seen at: a start answers from here instead of asking the bus (ADR 0084). A name not seen yet, or any name while
       * the watch is not running, is read from the bus. A deploy on another host reaches this one as its watch
       * delivers it, milliseconds later; a run started meanwhile is pinned to the version before, which stays loadable.
       */
      const seen = new Map<string, { readonly digest: string | null; readonly revision: number }>()
      let watching = false
      const learn = (name: string, digest: string | null, revision: number) => {
        const had = seen.get(name)
        if (had === undefined || had.revision < revision) seen.set(name, { digest, revision })
      }
      yield* Effect.forkScoped(
        current.watch().pipe(
          Stream.runForEach((c) =>
            Effect.sync(() => {
              // an unreadable registration is not remembered: a start reads it from the bus, and fails saying why
              if (c._tag === "Corrupt") seen.delete(c.key)
              else learn(c.key, c._tag === "Put" ? c.value.digest : null, c.revision)
              watching = true
            })
          ),
          Effect.ensuring(Effect.sync(() => (watching = false))),
          Effect.tapCause((cause) => Effect.logWarning("workflow registrations watch stopped; watching again", cause)),
          Effect.retry(Schedule.spaced("1 second")),
          Effect.forever
        )
      )
      const home = yield* Config.String("LANTERN_HOME").pipe(Config.withDefault(".lantern"))
      const cache = resolve(home, "workflows")
      /** Loaded versions: digest → its definitions by name. */
      const loaded = new Map<string, Promise<ReadonlyMap<string, Definition>>>()

      const importBundle = (digest: string, code: Uint8Array) => {
        const known = loaded.get(digest)
        if (known !== undefined) return known
        const loading = (async () => {
          mkdirSync(cache, { recursive: true })
          const path = join(cache, `${digest}.mjs`)
          writeFileSync(path, code)
          const module = (await import(pathToFileURL(path).href)) as Record<string, unknown>
          return new Map(definitionsOf(module).map((d) => [d.name, d]))
        })()
        loaded.set(digest, loading)
        loading.catch(() => loaded.delete(digest))
        return loading
      }

      const register = (file: string) =>
        Effect.gen(function*() {
          const code = yield* Effect.tryPromise({
            try: async () => {
              const esbuild = await import("esbuild")
              const out = await esbuild.build({
                entryPoints: [resolve(file)],
                bundle: true,
                format: "esm",
                platform: "node",
                target: "node20",
                write: false,
                logLevel: "silent",
                // inside this repository the SDK is used from its sources; an installed one from its build
                conditions: ["lantern-source"],
                banner: {
                  js:
                    "import { createRequire as __lanternRequire } from 'node:module'; const require = __lanternRequire(import.meta.url);"
                }
              })
              return out.outputFiles[0]!.contents
            },
            catch: (e) =>
              new WorkflowCodeError({ reason: `cannot bundle ${file}: ${e instanceof Error ? e.message : String(e)}` })
          })
          const digest = createHash("sha256").update(code).digest("hex").slice(0, 32)
          const definitions = yield* Effect.tryPromise({
            try: () => importBundle(digest, code),
            catch: (e) =>
              new WorkflowCodeError({ reason: `cannot load ${file}: ${e instanceof Error ? e.message : String(e)}` })
          })
          if (definitions.size === 0) {
            return yield* new WorkflowCodeError({
              reason: `${file} exports no workflow (export the values defineWorkflow returns)`
            })
          }
          for (const name of definitions.keys()) {
            if (!NAME.test(name)) {
              return yield* new WorkflowCodeError({
                reason: `workflow name ${JSON.stringify(name)} must match ${NAME}`
              })
            }
          }
          yield* blobs.put(digest, code)
          const registeredAt = new Date().toISOString()
          for (const name of definitions.keys()) learn(name, digest, yield* current.put(name, { digest, registeredAt }))
          return [...definitions.keys()]
        })

      const load = (ref: WorkflowRef) =>
        Effect.gen(function*() {
          const known = loaded.get(ref.digest)
          const definitions = known !== undefined
            ? yield* Effect.tryPromise({
              try: () => known,
              catch: (e) => new WorkflowCodeError({ reason: `cannot load workflow code ${ref.digest}: ${String(e)}` })
            })
            : yield* Effect.gen(function*() {
              const code = yield* blobs.get(ref.digest)
              if (code === null) {
                return yield* new WorkflowCodeError({
                  reason: `the code of workflow ${ref.name} version ${ref.digest} is not on the bus`
                })
              }
              return yield* Effect.tryPromise({
                try: () => importBundle(ref.digest, code),
                catch: (e) =>
                  new WorkflowCodeError({
                    reason: `cannot load workflow code ${ref.digest}: ${e instanceof Error ? e.message : String(e)}`
                  })
              })
            })
          const definition = definitions.get(ref.name)
          if (definition === undefined) {
            return yield* new WorkflowCodeError({ reason: `version ${ref.digest} defines no workflow ${ref.name}` })
          }
          return definition
        })

      return Registry.of({
        register,
        current: (name) =>
          Effect.suspend(() => {
            const known = watching ? seen.get(name) : undefined
            if (known !== undefined) {
              return Effect.succeed(known.digest === null ? Option.none() : Option.some({ name, digest: known.digest }))
            }
            return current.get(name).pipe(
              Effect.tap((e) =>
                Effect.sync(() => Option.isSome(e) && learn(name, e.value.value.digest, e.value.revision))
              ),
              Effect.map(Option.map((e) => ({ name, digest: e.value.digest }))),
              Effect.catchTag("CorruptValue", (e) => Effect.die(e))
            )
          }),
        load
      })
    })
  ).pipe(Layer.provide(Blobs.layer(CODE_BUCKET)))
}
