// What model tokens cost: a versioned table of USD per million tokens per model, built-in list prices merged
// with an operator's JSON file (LANTERN_PRICES_FILE). Every step's cost is computed from it by `costOf`.
import { Config, Context, Effect, Layer, Option, Schema } from "effect"
import * as ConfigFile from "./ConfigFile.ts"

const PerMTok = Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0))

/** USD per million tokens of one model. */
export const ModelPrice = Schema.Struct({
  inputPerMTok: PerMTok,
  outputPerMTok: PerMTok,
  /** Prompt tokens read from the provider's cache. */
  cachedInputPerMTok: PerMTok,
  /** Prompt tokens written to the cache, where a provider bills writes apart (Anthropic); the input price otherwise. */
  cacheWriteInputPerMTok: Schema.optionalKey(PerMTok)
})
export type ModelPrice = typeof ModelPrice.Type

export const Table = Schema.Struct({
  /** Names the prices in force, e.g. `2026-11-01`; recorded next to costs so a figure can be traced to its prices. */
  version: Schema.NonEmptyString,
  models: Schema.Record(Schema.String, ModelPrice)
})
export type Table = typeof Table.Type

/**
 * List prices (standard tier; Anthropic: prompts up to 200K tokens, 5-minute cache writes) at the time of
 * writing. A model missing here costs 0 until an operator's price file names it.
 */
export const defaults: Table = {
  version: "2026-11-01",
  models: {
    "gpt-4o-mini": { inputPerMTok: 0.15, outputPerMTok: 0.6, cachedInputPerMTok: 0.075 },
    "gpt-4o": { inputPerMTok: 2.5, outputPerMTok: 10, cachedInputPerMTok: 1.25 },
    "gpt-4.1-mini": { inputPerMTok: 0.4, outputPerMTok: 1.6, cachedInputPerMTok: 0.1 },
    "gpt-4.1": { inputPerMTok: 2, outputPerMTok: 8, cachedInputPerMTok: 0.5 },
    "claude-sonnet-4-5": { inputPerMTok: 3, outputPerMTok: 15, cachedInputPerMTok: 0.3, cacheWriteInputPerMTok: 3.75 },
    "claude-haiku-4-5": { inputPerMTok: 1, outputPerMTok: 5, cachedInputPerMTok: 0.1, cacheWriteInputPerMTok: 1.25 },
    "claude-opus-4-1": { inputPerMTok: 15, outputPerMTok: 75, cachedInputPerMTok: 1.5, cacheWriteInputPerMTok: 18.75 }
  }
}

/** A file's entries replace the same models' prices whole; its version names the merged table. */
export const merge = (base: Table, override: Table): Table => ({
  version: override.version,
  models: { ...base.models, ...override.models }
})

// `claude-sonnet-4-5-20250929`, `gpt-4o-mini-2024-07-18`: snapshots priced as their alias
const DATE_SUFFIX = /-(?:\d{8}|\d{4}-\d{2}-\d{2})$/

/** The table entry pricing `model`: its own, else that of its name without a date suffix. */
export const priceOf = (
  table: Table,
  model: string
): { readonly model: string; readonly price: ModelPrice } | undefined => {
  for (const name of [model, model.replace(DATE_SUFFIX, "")]) {
    const price = Object.hasOwn(table.models, name) ? table.models[name] : undefined
    if (price !== undefined) return { model: name, price }
  }
  return undefined
}

/** Tokens of one answer. `input` counts every prompt token, those read from or written to a cache included. */
export interface Usage {
  readonly input: number
  readonly output: number
  /** Of `input`, the tokens read from the provider's cache. */
  readonly cachedInput: number
  /** Of `input`, the tokens written to the cache (Anthropic reports them; 0 elsewhere). */
  readonly cacheWriteInput?: number
}

export interface Cost {
  readonly usd: number
  /** False when the model is missing from the table: `usd` is then 0, which is not the same as free. */
  readonly priced: boolean
}

/** Cached tokens are billed at their own rates and not again at the input rate. */
export const costOf = (table: Table, model: string, usage: Usage): Cost => {
  const entry = priceOf(table, model)
  if (entry === undefined) return { usd: 0, priced: false }
  const p = entry.price
  const cacheWrite = usage.cacheWriteInput ?? 0
  const uncached = Math.max(0, usage.input - usage.cachedInput - cacheWrite)
  const micro = uncached * p.inputPerMTok
    + usage.cachedInput * p.cachedInputPerMTok
    + cacheWrite * (p.cacheWriteInputPerMTok ?? p.inputPerMTok)
    + usage.output * p.outputPerMTok
  return { usd: micro / 1_000_000, priced: true }
}

export class PricesFileInvalid extends Schema.TaggedError<PricesFileInvalid>()("PricesFileInvalid", {
  file: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `price file ${this.file} (LANTERN_PRICES_FILE): ${this.reason}`
  }
}

/** A price file's table, whole or not at all: unknown keys are refused too, so a misspelt field is not silently dropped. */
export const fromFile = (file: string): Effect.Effect<Table, PricesFileInvalid> =>
  ConfigFile.read(file, Table as Schema.Codec<Table, unknown>, (reason) => new PricesFileInvalid({ file, reason }))

/** The built-in prices, with LANTERN_PRICES_FILE merged over them when it is set. */
export const fromConfig = Effect.gen(function*() {
  const file = yield* Config.option(Config.String("LANTERN_PRICES_FILE"))
  if (Option.isNone(file)) return defaults
  return merge(defaults, yield* fromFile(file.value))
})

export class Prices extends Context.Service<Prices, Table>()("lantern/actors/Prices") {}

export const layer = (table: Table) => Layer.succeed(Prices, table)

/** Fails the host's start on a bad price file, naming the file and the field, rather than billing at wrong prices. */
export const layerConfig = Layer.effect(Prices, fromConfig)
