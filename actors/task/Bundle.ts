// An attempt's bundle (issue 16, ADR 0057): the canonical JSON (schema/Canonical.ts) of everything its adapter saw
// (the task's fields, the adapter's spec, the prompt and inputs it built) and its SHA-256, stored with the attempt.
// Same inputs give the same hash whichever task, attempt or host ran them; a changed description changes it.
// Secrets are never in it: a spec names secrets by reference only, and env values under secret-looking names are
// replaced by a marker.
import { createHash } from "node:crypto"
import * as Canonical from "../../schema/Canonical.ts"
import type { AdapterSpec } from "../../schema/Task.ts"

/** Bumped when what goes into a bundle changes, so old and new hashes are never compared as equals. */
export const FORMAT = 1

export const REDACTED = "[redacted]"
/** Env names whose values are kept out of a bundle, as secrets would be. */
const SECRET_NAME = /(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)/iu

export interface Inputs {
  readonly task: {
    readonly kind: string
    readonly subject: string | null
    readonly description: string | null
    readonly payload: unknown
  }
  readonly adapter: AdapterSpec
  /** What the adapter reports it saw (AttemptResult.seen / AttemptFailure.seen). */
  readonly seen: unknown
}

export interface Bundle {
  /** The canonical JSON of the bundle. */
  readonly canonical: string
  /** `sha256:` and the hex digest of `canonical`. */
  readonly hash: string
}

/** The spec as a bundle keeps it: env values under secret-looking names redacted; secret references kept. */
export const sanitize = (spec: AdapterSpec): AdapterSpec => {
  if (!("env" in spec) || spec.env === undefined) return spec
  const env = Object.fromEntries(
    Object.entries(spec.env).map(([k, v]) => [k, SECRET_NAME.test(k) ? REDACTED : v])
  )
  return { ...spec, env }
}

/** JSON-safe: `undefined` dropped, non-finite numbers and other unencodable values made null. */
const jsonSafe = (value: unknown): unknown => {
  try {
    return JSON.parse(JSON.stringify(value ?? null)) as unknown
  } catch {
    return null
  }
}

export const compile = (inputs: Inputs): Bundle => {
  const canonical = Canonical.stringify({
    format: FORMAT,
    task: {
      kind: inputs.task.kind,
      subject: inputs.task.subject,
      description: inputs.task.description,
      payload: jsonSafe(inputs.task.payload)
    },
    adapter: jsonSafe(sanitize(inputs.adapter)),
    seen: jsonSafe(inputs.seen)
  })
  return { canonical, hash: `sha256:${createHash("sha256").update(canonical, "utf8").digest("hex")}` }
}
