// The worst case of a model call before it is made: the prompt counted with a real tokenizer, the output
// counted at its cap, both priced from the table. A budget reserves this amount; the call settles to its
// actual cost afterwards.
import { DEFAULT_MAX_TOKENS } from "../../schema/AgentSpec.ts"
import type { Quote, Request } from "./ModelProvider.ts"
import * as Prices from "./Prices.ts"
import * as Tokenizer from "./Tokenizer.ts"

/** Worst-case USD of `promptTokens` in and `maxTokens` out on one model (0 when the table lacks it). */
export const worstCaseUsd = (table: Prices.Table, model: string, promptTokens: number, maxTokens: number): number =>
  Prices.costOf(table, model, { input: promptTokens, output: maxTokens, cachedInput: 0 }).usd

/** The quote of a request on the given `provider/model` candidates (their names as `provider/model`). */
export const of = (
  table: Prices.Table,
  request: Request,
  candidates: ReadonlyArray<{ readonly provider: string; readonly model: string }>,
  defaultMaxTokens: number = DEFAULT_MAX_TOKENS
): Quote => {
  const promptTokens = Tokenizer.estimatePrompt(request.messages, request.tools)
  const maxTokens = request.maxTokens ?? defaultMaxTokens
  return {
    promptTokens,
    maxTokens,
    worstCaseUsd: candidates.reduce(
      (max, c) => Math.max(max, worstCaseUsd(table, c.model, promptTokens, maxTokens)),
      0
    ),
    models: candidates.map((c) => `${c.provider}/${c.model}`)
  }
}
