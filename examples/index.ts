// The examples' workflows, for `lantern dev --workflows examples/index.ts` (tests/examples.test.ts runs them).
export { emailTriage, labelOf } from "./email-triage.ts"
export { researchLoop, search } from "./research-loop.ts"
