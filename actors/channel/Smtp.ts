// A minimal SMTP client for email replies (ADR 0052): EHLO, AUTH PLAIN when credentials are set, MAIL, RCPT, DATA
// (dot-stuffed, CRLF), QUIT, over TCP (`smtp://`, a relay on a trusted network) or implicit TLS (`smtps://`).
// A 4xx answer is worth retrying, a 5xx is final; no credential is ever in an error.
import { connect as tcp, type Socket } from "node:net"
import { connect as tls } from "node:tls"

export interface Mail {
  readonly from: string
  readonly to: string
  readonly subject: string
  readonly text: string
  /** The Message-ID header (`<…@…>`): the same for every attempt of one reply, so receivers can drop a repeat. */
  readonly messageId: string
  readonly inReplyTo?: string
}

export class SmtpError extends Error {
  constructor(readonly code: number, readonly stage: string, text: string) {
    super(`SMTP ${stage}: ${code} ${text.slice(0, 200)}`)
  }
  get permanent() {
    return this.code >= 500
  }
}

const ADDRESS = /^[^\s<>@,;:"]{1,64}@[A-Za-z0-9.-]{1,255}$/u
export const isAddress = (s: string) => ADDRESS.test(s)

/** A header value on one line: no CR or LF can start another header. */
const oneLine = (s: string) => s.replace(/[\r\n]+/gu, " ").slice(0, 900)

/** RFC 5322 text with CRLF line ends and SMTP dot-stuffing. */
export const render = (mail: Mail, date: Date): string => {
  const headers = [
    `From: ${oneLine(mail.from)}`,
    `To: ${oneLine(mail.to)}`,
    `Subject: ${oneLine(mail.subject)}`,
    `Date: ${date.toUTCString().replace("GMT", "+0000")}`,
    `Message-ID: ${oneLine(mail.messageId)}`,
    ...(mail.inReplyTo === undefined
      ? []
      : [`In-Reply-To: ${oneLine(mail.inReplyTo)}`, `References: ${oneLine(mail.inReplyTo)}`]),
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: 8bit"
  ]
  const body = mail.text.replace(/\r?\n/gu, "\r\n").split("\r\n").map((l) => (l.startsWith(".") ? `.${l}` : l))
  return [...headers, "", ...body].join("\r\n")
}

/** Sends one mail through the server at `url` (`smtp://host:port` or `smtps://host:port`). */
export const send = async (
  url: string,
  auth: { readonly user: string; readonly pass: string } | null,
  mail: Mail,
  timeoutMs = 15_000
): Promise<void> => {
  if (!isAddress(mail.from)) throw new SmtpError(501, "from", "not an address")
  if (!isAddress(mail.to)) throw new SmtpError(501, "to", "not an address")
  const u = new URL(url)
  const secure = u.protocol === "smtps:"
  const port = Number(u.port || (secure ? 465 : 25))
  const socket: Socket = secure
    ? tls({ host: u.hostname, port, servername: u.hostname })
    : tcp({ host: u.hostname, port })
  socket.setTimeout(timeoutMs)
  let buffer = ""
  const waiting: Array<(line: { code: number; text: string } | Error) => void> = []
  const replies: Array<{ code: number; text: string } | Error> = []
  const deliver = (r: { code: number; text: string } | Error) => {
    const w = waiting.shift()
    if (w !== undefined) w(r)
    else replies.push(r)
  }
  socket.on("data", (chunk: Buffer) => {
    buffer += chunk.toString("utf8")
    let text = ""
    for (let i = buffer.indexOf("\r\n"); i >= 0; i = buffer.indexOf("\r\n")) {
      const line = buffer.slice(0, i)
      buffer = buffer.slice(i + 2)
      text += line.slice(4) + " "
      // a multi-line reply is `250-…` lines ending with `250 …`
      if (line[3] !== "-") {
        deliver({ code: Number(line.slice(0, 3)), text: text.trim() })
        text = ""
      }
    }
  })
  socket.on("timeout", () => {
    deliver(new SmtpError(421, "connection", "timed out"))
    socket.destroy()
  })
  socket.on("error", (e) => deliver(new SmtpError(421, "connection", e.message)))
  socket.on("close", () => deliver(new SmtpError(421, "connection", "closed")))
  const next = () =>
    new Promise<{ code: number; text: string }>((resolve, reject) => {
      const take = (r: { code: number; text: string } | Error) => (r instanceof Error ? reject(r) : resolve(r))
      const ready = replies.shift()
      if (ready !== undefined) take(ready)
      else waiting.push(take)
    })
  const expect = async (stage: string, ok: ReadonlyArray<number>, command?: string) => {
    if (command !== undefined) socket.write(`${command}\r\n`)
    const r = await next()
    if (!ok.includes(r.code)) throw new SmtpError(r.code, stage, r.text)
    return r
  }
  try {
    await expect("greeting", [220])
    await expect("EHLO", [250], "EHLO lantern")
    if (auth !== null) {
      const token = Buffer.from(`\0${auth.user}\0${auth.pass}`).toString("base64")
      await expect("AUTH", [235], `AUTH PLAIN ${token}`)
    }
    await expect("MAIL FROM", [250], `MAIL FROM:<${mail.from}>`)
    await expect("RCPT TO", [250, 251], `RCPT TO:<${mail.to}>`)
    await expect("DATA", [354], "DATA")
    await expect("message", [250], `${render(mail, new Date())}\r\n.`)
    await expect("QUIT", [221], "QUIT").catch(() => undefined)
  } finally {
    socket.destroy()
  }
}
