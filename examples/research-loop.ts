// A research loop with a human at the end: plan a query, search, take notes, for a bounded number of rounds; then a
// person approves publishing the summary. The search is a local corpus here (a deployment calls its search API in
// the same step). Run it: `lantern dev --workflows examples/index.ts`, then
// POST /v1/runs {"workflow": "research-loop", "input": {"question": "…", "rounds": 2}}.
import { defineWorkflow } from "@lantern/sdk"

const CORPUS: ReadonlyArray<{ readonly title: string; readonly text: string }> = [
  { title: "Lanterns", text: "A lantern is a portable light source with a protective enclosure." },
  { title: "JetStream", text: "JetStream is the persistence layer of NATS: streams, consumers, key-value stores." },
  { title: "Event sourcing", text: "State is the fold of an append-only journal of events." },
  { title: "Receipts", text: "A receipt signs a digest of a run's journal so an auditor can verify it offline." }
]

/** The corpus entries sharing a word of four letters or more with the query. */
export const search = (query: string) => {
  const words = new Set(query.toLowerCase().split(/\W+/).filter((w) => w.length >= 4))
  return CORPUS.filter((d) => d.text.toLowerCase().split(/\W+/).some((w) => words.has(w))).map((d) => d.title)
}

export const researchLoop = defineWorkflow(
  "research-loop",
  async (ctx, input: { readonly question: string; readonly rounds?: number }) => {
    const rounds = Math.min(5, Math.max(1, input.rounds ?? 2))
    const notes: Array<string> = []
    for (let round = 1; round <= rounds; round++) {
      const plan = await ctx.llm({
        messages: [
          { role: "system", content: "Propose one search query for the question, given the notes so far." },
          { role: "user", content: `Question: ${input.question}\nNotes: ${notes.join("; ") || "none"}` }
        ],
        maxTokens: 32
      })
      const query = `${input.question} ${plan.content ?? ""}`
      const found = await ctx.step(`search-${round}`, () => search(query))
      notes.push(`round ${round}: ${found.join(", ") || "nothing"}`)
    }
    const summary = await ctx.llm({
      messages: [
        { role: "system", content: "Summarize the notes as an answer to the question." },
        { role: "user", content: `Question: ${input.question}\nNotes: ${notes.join("; ")}` }
      ],
      maxTokens: 300
    })
    const decision = await ctx.approval({ reason: "publish this summary?", expiresInSeconds: 86_400 })
    return { notes, summary: summary.content, published: decision.approved }
  }
)
