// The SMTP client against a local SMTP server: the message as sent (headers on one line each, dot-stuffing, CRLF),
// AUTH PLAIN, and a 5xx that is final beside a 4xx worth retrying.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as FakeSmtp from "../../tests/support/FakeSmtp.ts"
import * as Smtp from "./Smtp.ts"

let server: FakeSmtp.FakeSmtp
beforeAll(async () => {
  server = await FakeSmtp.start()
})
afterAll(() => server.close())

const mail: Smtp.Mail = {
  from: "agent@shop.example",
  to: "ada@example.org",
  subject: "Re: hello\r\nBcc: victim@example.org",
  text: "line one\n.starts with a dot\n.\nend",
  messageId: "<ses_1.1@shop.example>",
  inReplyTo: "<m1@example.org>"
}

describe("SMTP client", () => {
  it("sends one message: a header cannot be injected, lines starting with a dot survive", async () => {
    await Smtp.send(server.url, { user: "relay", pass: "pw" }, mail)
    const [got] = server.messages
    expect(got).toMatchObject({ from: "agent@shop.example", to: ["ada@example.org"], auth: "\0relay\0pw" })
    const [head, body] = got!.data.split("\r\n\r\n") as [string, string]
    expect(head.split("\r\n").filter((l) => l.startsWith("Bcc:"))).toEqual([])
    expect(head).toContain("Subject: Re: hello Bcc: victim@example.org")
    expect(head).toContain("In-Reply-To: <m1@example.org>")
    expect(body).toBe("line one\r\n.starts with a dot\r\n.\r\nend")
  })

  it("a 4xx is not final, a bad address is", async () => {
    server.defer(1)
    const deferred = await Smtp.send(server.url, null, mail).catch((e: Smtp.SmtpError) => e)
    expect(deferred).toBeInstanceOf(Smtp.SmtpError)
    expect((deferred as Smtp.SmtpError).permanent).toBe(false)
    const bad = await Smtp.send(server.url, null, { ...mail, to: "not an address" }).catch((e: Smtp.SmtpError) => e)
    expect((bad as Smtp.SmtpError).permanent).toBe(true)
    const closed = await Smtp.send("smtp://127.0.0.1:1", null, mail).catch((e: Smtp.SmtpError) => e)
    expect((closed as Smtp.SmtpError).permanent).toBe(false)
  })
})
