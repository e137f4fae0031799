// Operator JSON files (models, prices), read whole or not at all: unknown keys are refused too, so a misspelt
// field is not silently dropped, and every problem is named with its field.
import { readFile } from "node:fs/promises"
import { Effect, Schema } from "effect"
import * as Issues from "../../schema/Issues.ts"

export const read = <A, E>(
  file: string,
  schema: Schema.Codec<A, unknown>,
  invalid: (reason: string) => E
): Effect.Effect<A, E> =>
  Effect.gen(function*() {
    const text = yield* Effect.tryPromise({
      try: () => readFile(file, "utf8"),
      catch: (e) => invalid(`cannot be read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`)
    })
    const json = yield* Effect.try({
      try: (): unknown => JSON.parse(text),
      catch: (e) => invalid(`is not JSON: ${e instanceof Error ? e.message : String(e)}`)
    })
    return yield* Schema.decodeUnknownEffect(schema)(json, { errors: "all", onExcessProperty: "error" }).pipe(
      Effect.mapError((e) => invalid(Issues.toText(e.issue)))
    )
  })
