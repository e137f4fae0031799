// Email triage, code-first: a model labels each email, urgent ones wait for a human before the reply goes out, and
// every effect is a journaled step, so a crash never sends a reply twice (the reply step's key is its idempotency
// key for the mail provider). Run it: `lantern dev --workflows examples/index.ts`, then
// POST /v1/runs {"workflow": "email-triage", "input": {"from": "ana@example.com", "subject": "…", "body": "…"}}.
import { defineWorkflow } from "@lantern/sdk"

export interface Email {
  readonly from: string
  readonly subject: string
  readonly body: string
}

const LABELS = ["urgent", "billing", "support", "spam", "other"] as const
type Label = (typeof LABELS)[number]

/** The first known label the model's answer names (models answer in prose; this keeps the code in charge). */
export const labelOf = (answer: string | null): Label => {
  const text = (answer ?? "").toLowerCase()
  return LABELS.find((l) => text.includes(l)) ?? "other"
}

export const emailTriage = defineWorkflow("email-triage", async (ctx, email: Email) => {
  const answer = await ctx.llm({
    model: "auto",
    messages: [
      { role: "system", content: `Label the email with one word of: ${LABELS.join(", ")}.` },
      { role: "user", content: `From: ${email.from}\nSubject: ${email.subject}\n\n${email.body}` }
    ],
    maxTokens: 16
  })
  const label = labelOf(answer.content)
  if (label === "spam") return { label, replied: false }
  const draft = await ctx.llm({
    messages: [
      { role: "system", content: "Write a short, kind reply to this email." },
      { role: "user", content: email.body }
    ],
    maxTokens: 200
  })
  if (label === "urgent") {
    const decision = await ctx.approval({
      reason: `urgent email from ${email.from}: send the reply?`,
      expiresInSeconds: 3_600
    })
    if (!decision.approved) return { label, replied: false, by: decision.by }
  }
  // the effect: a real deployment calls its mail API here with `key` as the idempotency key
  const sent = await ctx.step(
    "send-reply",
    ({ key }) => ({ to: email.from, idempotencyKey: key, chars: draft.content?.length ?? 0 })
  )
  return { label, replied: true, sent }
})
