// The ingest contract: the subject's shape, the body's fields each named when wrong, Nats-Msg-Id agreeing with
// eventId, and the templates that make a run's input.
import { describe, expect, it } from "vitest"
import * as Contract from "./Contract.ts"

const utf8 = (v: unknown) => new TextEncoder().encode(typeof v === "string" ? v : JSON.stringify(v))
const good = { eventId: "e-1", type: "order.created", data: { id: 7 } }

describe("ingest contract", () => {
  it("accepts an event on lantern.ingest.<tenant>.<source>", () => {
    expect(Contract.check("lantern.ingest.acme.shop", "e-1", utf8(good))).toEqual({
      ok: true,
      tenant: "acme",
      source: "shop",
      event: good
    })
    expect(Contract.check("lantern.ingest.acme.shop", undefined, utf8({ ...good, data: null })).ok).toBe(true)
  })

  it("names what is wrong", () => {
    const field = (subject: string, body: unknown, msgId?: string) => {
      const c = Contract.check(subject, msgId, utf8(body))
      return c.ok ? null : c.field
    }
    expect(field("lantern.ingest.acme", good)).toBe("(subject)")
    expect(field("lantern.ingest.acme.shop.extra", good)).toBe("(subject)")
    expect(field("lantern.ingest.Acme.shop", good)).toBe("(subject)")
    expect(field("lantern.ingest.acme.shop", "{oops")).toBe("(body)")
    expect(field("lantern.ingest.acme.shop", [good])).toBe("(body)")
    expect(field("lantern.ingest.acme.shop", { eventId: "e", type: "t" })).toBe("data")
    expect(field("lantern.ingest.acme.shop", { ...good, eventId: "" })).toBe("eventId")
    expect(field("lantern.ingest.acme.shop", { ...good, eventId: "has space" })).toBe("eventId")
    expect(field("lantern.ingest.acme.shop", { ...good, type: 3 })).toBe("type")
    expect(field("lantern.ingest.acme.shop", { ...good, occurredAt: "yesterday" })).toBe("occurredAt")
    expect(field("lantern.ingest.acme.shop", { ...good, agentName: "Not An Agent" })).toBe("agentName")
    expect(field("lantern.ingest.acme.shop", good, "another")).toBe("Nats-Msg-Id")
    const bytes = new Uint8Array([0xff, 0xfe])
    expect(Contract.check("lantern.ingest.acme.shop", undefined, bytes)).toMatchObject({ ok: false, field: "(body)" })
  })

  it("fills templates from the event", () => {
    const values = { eventId: "e-1", type: "t", source: "shop", occurredAt: null, data: { id: 7, who: { n: "Ada" } } }
    expect(Contract.render("{{type}} {{data.id}} by {{ data.who.n }} ({{missing}}) {{data.who}}", values))
      .toBe(`t 7 by Ada () {"n":"Ada"}`)
  })
})
