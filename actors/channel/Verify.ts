// Each platform's webhook signature, checked exactly as the platform documents it (ADR 0050). Pure: the raw body,
// the headers, the secret and the time in, a verdict out. Every comparison is constant-time, over digests of
// equal length, so neither content nor length of a guess leaks through timing.
import { createHash, createHmac, createPublicKey, timingSafeEqual, verify as verifySignature } from "node:crypto"

export type Verdict = { readonly ok: true } | { readonly ok: false; readonly reason: string }

const ok: Verdict = { ok: true }
const no = (reason: string): Verdict => ({ ok: false, reason })

/** Constant-time equality of two strings (their SHA-256 digests are compared, so lengths do not leak). */
export const same = (a: string, b: string): boolean =>
  timingSafeEqual(createHash("sha256").update(a, "utf8").digest(), createHash("sha256").update(b, "utf8").digest())

/** How far a Slack request's timestamp may be from now, either way. */
export const SLACK_TOLERANCE_SECONDS = 300

/** `X-Slack-Signature: v0=hex(HMAC-SHA256(signingSecret, "v0:" + ts + ":" + rawBody))`, ts within ±300 s of now. */
export const slack = (
  signingSecret: string,
  headers: { readonly signature: string | undefined; readonly timestamp: string | undefined },
  rawBody: Uint8Array,
  nowSeconds: number
): Verdict => {
  if (headers.signature === undefined) return no("missing X-Slack-Signature")
  if (headers.timestamp === undefined) return no("missing X-Slack-Request-Timestamp")
  if (!/^\d{1,12}$/.test(headers.timestamp)) return no("malformed X-Slack-Request-Timestamp")
  const skew = Math.abs(nowSeconds - Number(headers.timestamp))
  if (skew > SLACK_TOLERANCE_SECONDS) return no(`timestamp ${skew} s from now (over ${SLACK_TOLERANCE_SECONDS} s)`)
  const expected = "v0=" + createHmac("sha256", signingSecret)
    .update(`v0:${headers.timestamp}:`)
    .update(rawBody)
    .digest("hex")
  return same(headers.signature, expected) ? ok : no("signature mismatch")
}

/** `X-Telegram-Bot-Api-Secret-Token` equals the secret token set with setWebhook. */
export const telegram = (secretToken: string, header: string | undefined): Verdict =>
  header === undefined
    ? no("missing X-Telegram-Bot-Api-Secret-Token")
    : same(header, secretToken)
    ? ok
    : no("secret token mismatch")

/** WhatsApp Cloud API (Meta): `X-Hub-Signature-256: sha256=hex(HMAC-SHA256(appSecret, rawBody))`. */
export const whatsapp = (appSecret: string, header: string | undefined, rawBody: Uint8Array): Verdict => {
  if (header === undefined) return no("missing X-Hub-Signature-256")
  const expected = "sha256=" + createHmac("sha256", appSecret).update(rawBody).digest("hex")
  return same(header, expected) ? ok : no("signature mismatch")
}

/** The SubjectPublicKeyInfo (DER) prefix of a raw 32-byte Ed25519 public key. */
const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex")

/** Discord interactions: Ed25519 over `X-Signature-Timestamp ‖ rawBody` under the application's public key (hex). */
export const discord = (
  publicKeyHex: string,
  headers: { readonly signature: string | undefined; readonly timestamp: string | undefined },
  rawBody: Uint8Array
): Verdict => {
  if (headers.signature === undefined) return no("missing X-Signature-Ed25519")
  if (headers.timestamp === undefined) return no("missing X-Signature-Timestamp")
  if (!/^[0-9a-f]{128}$/i.test(headers.signature)) return no("malformed X-Signature-Ed25519")
  if (!/^[0-9a-f]{64}$/i.test(publicKeyHex.trim())) return no("the channel's public key is not 32 bytes of hex")
  const key = createPublicKey({
    key: Buffer.concat([ED25519_SPKI_PREFIX, Buffer.from(publicKeyHex.trim(), "hex")]),
    format: "der",
    type: "spki"
  })
  const message = Buffer.concat([Buffer.from(headers.timestamp, "utf8"), rawBody])
  return verifySignature(null, message, key, Buffer.from(headers.signature, "hex")) ? ok : no("signature mismatch")
}

/**
 * Twilio: `X-Twilio-Signature = base64(HMAC-SHA1(authToken, url + every form pair sorted by key then value))`,
 * over the exact URL Twilio called (the connection's publicUrl). Repeated parameters each count.
 */
export const twilioSignature = (authToken: string, url: string, pairs: ReadonlyArray<readonly [string, string]>) => {
  const sorted = [...pairs].sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
  return createHmac("sha1", authToken).update(url + sorted.map(([k, v]) => k + v).join(""), "utf8").digest("base64")
}

export const twilio = (
  authToken: string,
  url: string,
  pairs: ReadonlyArray<readonly [string, string]>,
  header: string | undefined
): Verdict =>
  header === undefined
    ? no("missing X-Twilio-Signature")
    : same(header, twilioSignature(authToken, url, pairs))
    ? ok
    : no("signature mismatch")

/**
 * Postmark inbound has no signature of its own: Lantern requires HTTP Basic credentials in the URL Postmark posts
 * to (ADR 0052), `lantern:<signingSecret>`, checked here.
 */
export const basic = (secret: string, header: string | undefined): Verdict => {
  if (header === undefined || !header.startsWith("Basic ")) return no("missing Authorization: Basic")
  const decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8")
  return same(decoded, `lantern:${secret}`) ? ok : no("credentials mismatch")
}
