// Test support: a local SMTP server speaking RFC 5321 as a relay does (220 greeting, EHLO with AUTH PLAIN, MAIL,
// RCPT, DATA until the lone dot, QUIT), recording each message as received.
import { createServer, type Socket } from "node:net"
import type { AddressInfo } from "node:net"

export interface Received {
  readonly from: string
  readonly to: ReadonlyArray<string>
  readonly auth: string | null
  /** The DATA section as sent (dot-stuffing undone), CRLF line ends. */
  readonly data: string
}

export interface FakeSmtp {
  readonly url: string
  readonly messages: Array<Received>
  /** The next `times` DATA commands are answered 451 (try again later). */
  readonly defer: (times: number) => void
  readonly close: () => Promise<void>
}

export const start = async (): Promise<FakeSmtp> => {
  const messages: Array<Received> = []
  let deferring = 0
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
    let buffer = ""
    let inData = false
    let data: Array<string> = []
    let from = ""
    let to: Array<string> = []
    let auth: string | null = null
    const say = (line: string) => socket.write(`${line}\r\n`)
    say("220 fake.smtp.test ESMTP ready")
    socket.on("data", (chunk: Buffer) => {
      buffer += chunk.toString("utf8")
      for (let i = buffer.indexOf("\r\n"); i >= 0; i = buffer.indexOf("\r\n")) {
        const line = buffer.slice(0, i)
        buffer = buffer.slice(i + 2)
        if (inData) {
          if (line === ".") {
            inData = false
            if (deferring > 0) {
              deferring--
              say("451 4.3.0 try again later")
            } else {
              messages.push({ from, to, auth, data: data.join("\r\n") })
              say("250 2.0.0 queued")
            }
            data = []
          } else data.push(line.startsWith("..") ? line.slice(1) : line)
          continue
        }
        const verb = line.slice(0, 4).toUpperCase()
        if (verb === "EHLO") {
          say("250-fake.smtp.test")
          say("250 AUTH PLAIN")
        } else if (verb === "AUTH") {
          auth = Buffer.from(line.split(" ")[2] ?? "", "base64").toString("utf8")
          say("235 2.7.0 authenticated")
        } else if (verb === "MAIL") {
          from = /<([^>]*)>/.exec(line)?.[1] ?? ""
          to = []
          say("250 2.1.0 ok")
        } else if (verb === "RCPT") {
          to.push(/<([^>]*)>/.exec(line)?.[1] ?? "")
          say("250 2.1.5 ok")
        } else if (verb === "DATA") {
          inData = true
          say("354 end with <CRLF>.<CRLF>")
        } else if (verb === "QUIT") {
          say("221 2.0.0 bye")
          socket.end()
        } else say("502 5.5.2 not implemented")
      }
    })
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  return {
    url: `smtp://127.0.0.1:${(server.address() as AddressInfo).port}`,
    messages,
    defer: (n) => {
      deferring = n
    },
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy()
        server.close(() => r())
      })
  }
}
