// Each platform's signature check against its documented example or its documented algorithm, and the edges that
// must refuse: the Slack window both ways, absent headers, a signature of another body or under another key.
import { createHmac, generateKeyPairSync, sign } from "node:crypto"
import { describe, expect, it } from "vitest"
import * as Verify from "./Verify.ts"

const utf8 = (s: string) => new TextEncoder().encode(s)

describe("Slack", () => {
  // Slack's documented example (api.slack.com/authentication/verifying-requests-from-slack)
  const secret = "8f742231b10e8888abcd99yyyzzz85a5"
  const ts = "1531420618"
  const body = utf8(
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
  )
  const signature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

  it("accepts the documented example within 300 s either way", () => {
    for (const now of [1531420618, 1531420618 + 300, 1531420618 - 300]) {
      expect(Verify.slack(secret, { signature, timestamp: ts }, body, now)).toEqual({ ok: true })
    }
  })

  it("refuses 301 s either way, another body, another secret, and absent or malformed headers", () => {
    const at = (now: number) => Verify.slack(secret, { signature, timestamp: ts }, body, now).ok
    expect(at(1531420618 + 301)).toBe(false)
    expect(at(1531420618 - 301)).toBe(false)
    expect(Verify.slack(secret, { signature, timestamp: ts }, utf8("token=x"), 1531420618).ok).toBe(false)
    expect(Verify.slack("another", { signature, timestamp: ts }, body, 1531420618).ok).toBe(false)
    expect(Verify.slack(secret, { signature: undefined, timestamp: ts }, body, 1531420618).ok).toBe(false)
    expect(Verify.slack(secret, { signature, timestamp: undefined }, body, 1531420618).ok).toBe(false)
    expect(Verify.slack(secret, { signature, timestamp: "1531420618.5" }, body, 1531420618).ok).toBe(false)
    expect(Verify.slack(secret, { signature: signature.toUpperCase(), timestamp: ts }, body, 1531420618).ok).toBe(false)
  })
})

describe("Telegram and WhatsApp", () => {
  it("Telegram: the header equals the secret token; absent or any other value is refused", () => {
    expect(Verify.telegram("s3cret", "s3cret").ok).toBe(true)
    expect(Verify.telegram("s3cret", undefined).ok).toBe(false)
    expect(Verify.telegram("s3cret", "s3cre").ok).toBe(false)
    expect(Verify.telegram("s3cret", "s3cret ").ok).toBe(false)
  })

  it("WhatsApp: sha256= and the hex HMAC of the raw bytes under the app secret", () => {
    const body = utf8(`{"object":"whatsapp_business_account","entry":[]}`)
    const good = "sha256=" + createHmac("sha256", "app").update(body).digest("hex")
    expect(Verify.whatsapp("app", good, body).ok).toBe(true)
    expect(Verify.whatsapp("app", good.slice("sha256=".length), body).ok).toBe(false)
    expect(Verify.whatsapp("other", good, body).ok).toBe(false)
    expect(Verify.whatsapp("app", undefined, body).ok).toBe(false)
  })
})

describe("Discord", () => {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519")
  const hex = publicKey.export({ format: "der", type: "spki" }).subarray(12).toString("hex")
  const body = utf8(`{"type":1}`)
  const ts = "1700000000"
  const signature = sign(null, Buffer.concat([Buffer.from(ts), body]), privateKey).toString("hex")

  it("verifies Ed25519 over timestamp ‖ body under the application's public key", () => {
    expect(Verify.discord(hex, { signature, timestamp: ts }, body)).toEqual({ ok: true })
  })

  it("refuses another timestamp, body or key, and malformed or absent headers", () => {
    expect(Verify.discord(hex, { signature, timestamp: "1700000001" }, body).ok).toBe(false)
    expect(Verify.discord(hex, { signature, timestamp: ts }, utf8(`{"type":2}`)).ok).toBe(false)
    const other = generateKeyPairSync("ed25519").publicKey.export({ format: "der", type: "spki" }).subarray(12)
    expect(Verify.discord(other.toString("hex"), { signature, timestamp: ts }, body).ok).toBe(false)
    expect(Verify.discord(hex, { signature: "zz", timestamp: ts }, body).ok).toBe(false)
    expect(Verify.discord(hex, { signature: undefined, timestamp: ts }, body).ok).toBe(false)
    expect(Verify.discord(hex, { signature, timestamp: undefined }, body).ok).toBe(false)
    expect(Verify.discord("abcd", { signature, timestamp: ts }, body).ok).toBe(false)
  })
})

describe("Twilio", () => {
  const url = "https://mycompany.com/myapp.php?foo=1&bar=2"
  const pairs: Array<[string, string]> = [
    ["To", "+18005551212"],
    ["From", "+12349013030"],
    ["Digits", "1234"],
    ["Caller", "+12349013030"],
    ["CallSid", "CA1234567890ABCDE"]
  ]
  // the documented construction, spelled out: URL, then name+value of each parameter sorted by name
  const expected = createHmac("sha1", "12345")
    .update(url + "CallSidCA1234567890ABCDECaller+12349013030Digits1234From+12349013030To+18005551212")
    .digest("base64")

  it("signs the URL and the parameters sorted by name", () => {
    expect(Verify.twilioSignature("12345", url, pairs)).toBe(expected)
    expect(Verify.twilio("12345", url, pairs, expected).ok).toBe(true)
  })

  it("sorts repeated parameters by value, and refuses another URL or a missing header", () => {
    const repeated: Array<[string, string]> = [["Media", "b"], ["Media", "a"], ["Body", "x"]]
    const sig = createHmac("sha1", "t").update("https://x.test/h" + "BodyxMediaaMediab").digest("base64")
    expect(Verify.twilio("t", "https://x.test/h", repeated, sig).ok).toBe(true)
    expect(Verify.twilio("t", "https://x.test/h/", repeated, sig).ok).toBe(false)
    expect(Verify.twilio("t", "https://x.test/h", repeated, undefined).ok).toBe(false)
  })
})
