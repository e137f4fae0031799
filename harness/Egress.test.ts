// The egress gate's decisions (harness/Egress.ts): rules by exact name, subdomain wildcard and IP literal, default
// ports, default deny, and private answers refused after resolution (every answer, not only the first).
import { describe, expect, it } from "vitest"
import { decide, ruleFor } from "./Egress.ts"

const dns = (answers: Record<string, ReadonlyArray<string>>) => async (host: string) => {
  const found = answers[host]
  if (found === undefined) throw new Error(`getaddrinfo ENOTFOUND ${host}`)
  return found
}

describe("the egress gate", () => {
  it("matches exact names, *.domain for subdomains only, and ports (443 when a rule names none)", () => {
    const rules = [{ host: "api.example.com" }, { host: "*.svc.example.com", ports: [8443, 80] }]
    expect(ruleFor(rules, "api.example.com", 443)).toBeDefined()
    expect(ruleFor(rules, "API.Example.com", 443)).toBeDefined()
    expect(ruleFor(rules, "api.example.com", 80)).toBeUndefined()
    expect(ruleFor(rules, "a.svc.example.com", 8443)).toBeDefined()
    expect(ruleFor(rules, "svc.example.com", 8443)).toBeUndefined()
    expect(ruleFor(rules, "evilsvc.example.com", 80)).toBeUndefined()
    expect(ruleFor(rules, "a.svc.example.com.evil.org", 80)).toBeUndefined()
  })

  it("denies everything without rules", async () => {
    expect(await decide({ rules: [], allowPrivate: [] }, "api.example.com", 443, dns({}))).toEqual({
      allowed: false,
      reason: "no egress rules (default deny)"
    })
  })

  it("connects to the address it checked, and refuses a name with any private answer", async () => {
    const policy = { rules: [{ host: "api.example.com" }, { host: "rebind.example.com" }], allowPrivate: [] }
    const resolve = dns({
      "api.example.com": ["203.0.113.7"],
      "rebind.example.com": ["203.0.113.8", "169.254.169.254"]
    })
    expect(await decide(policy, "api.example.com", 443, resolve)).toEqual({ allowed: true, address: "203.0.113.7" })
    const rebind = await decide(policy, "rebind.example.com", 443, resolve)
    expect(rebind.allowed).toBe(false)
    expect(rebind).toMatchObject({ reason: expect.stringContaining("169.254.169.254") })
    expect((await decide(policy, "unknown.example.com", 443, resolve)).allowed).toBe(false)
  })

  it("takes IP literals only when listed, and never a private one unless the deployment allows it", async () => {
    const policy = {
      rules: [{ host: "203.0.113.9" }, { host: "10.1.2.3" }, { host: "127.0.0.1", ports: [8080] }],
      allowPrivate: ["127.0.0.1"]
    }
    const none = dns({})
    expect(await decide(policy, "203.0.113.9", 443, none)).toEqual({ allowed: true, address: "203.0.113.9" })
    expect((await decide(policy, "203.0.113.10", 443, none)).allowed).toBe(false)
    expect(await decide(policy, "10.1.2.3", 443, none)).toEqual({
      allowed: false,
      reason: "10.1.2.3 is a private address"
    })
    expect(await decide(policy, "127.0.0.1", 8080, none)).toEqual({ allowed: true, address: "127.0.0.1" })
    expect((await decide(policy, "[::1]", 443, none)).allowed).toBe(false)
  })
})
