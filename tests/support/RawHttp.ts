// HTTP/1.1 spoken on a raw socket, for tests that must see how a response is split into reads (where a stream's last
// frame and the end of its response arrive) and whether the connection stays usable after it.
import { once } from "node:events"
import { connect, type Socket } from "node:net"

export interface RawConnection {
  readonly socket: Socket
  /** Every read of the socket so far, as the client got them. */
  readonly reads: ReadonlyArray<string>
  /** The first read from index `from` on that matches `pattern`, waited for up to 30 s. */
  readonly readMatching: (pattern: RegExp, from: number) => Promise<string>
  /** Writes a request line, `headers` and an optional body (its content-length set). */
  readonly send: (requestLine: string, headers: Record<string, string>, body?: string) => void
}

/** A connection to the server at `url`, open once this resolves; destroy its socket when done. */
export const open = async (url: string): Promise<RawConnection> => {
  const { hostname, port } = new URL(url)
  const socket = connect(Number(port), hostname)
  const reads: Array<string> = []
  let wake = () => {}
  socket.on("data", (d: Buffer) => {
    reads.push(d.toString("utf8"))
    wake()
  })
  await once(socket, "connect")
  const readMatching = async (pattern: RegExp, from: number) => {
    const deadline = Date.now() + 30_000
    for (;;) {
      const found = reads.slice(from).find((r) => pattern.test(r))
      if (found !== undefined) return found
      if (Date.now() > deadline) throw new Error(`no read matched ${pattern}: ${JSON.stringify(reads)}`)
      await new Promise<void>((r) => {
        wake = r
        setTimeout(r, 1000)
      })
    }
  }
  const send = (requestLine: string, headers: Record<string, string>, body?: string) => {
    const all = {
      host: hostname,
      ...headers,
      ...(body === undefined ? {} : { "content-length": String(Buffer.byteLength(body)) })
    }
    socket.write(`${requestLine}\r\n${Object.entries(all).map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n${body ?? ""}`)
  }
  return { socket, reads, readMatching, send }
}

/** A read that ends a chunked response: the read ends with the encoding's last chunk. */
export const ENDS_RESPONSE = /\r\n0\r\n\r\n$/

/**
 * Waits for the read that brings `last` (a stream's last frame), then asks the same connection for `/healthz`: the
 * read, and the answer to that next request (a connection the response left busy or closed gives none).
 */
export const lastAndNext = async (raw: RawConnection, last: RegExp) => {
  const read = await raw.readMatching(last, 0)
  const before = raw.reads.length
  raw.send("GET /healthz HTTP/1.1", {})
  return { read, next: await raw.readMatching(/^HTTP\/1\.1 200 /, before) }
}
