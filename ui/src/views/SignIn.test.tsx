// The sign-in form: a refused key is said so and not kept; an accepted one is handed on (and never put in the URL).
import { fireEvent, render, screen } from "@solidjs/testing-library"
import { afterEach, describe, expect, it, vi } from "vitest"
import { SignIn } from "./SignIn.tsx"

afterEach(() => vi.unstubAllGlobals())

/** A fetch that accepts only `good` as a bearer token. */
const server = (good: string) =>
  vi.fn(async (_url: string, init?: RequestInit) => {
    const auth = new Headers(init?.headers).get("authorization")
    return auth === `Bearer ${good}`
      ? Response.json({ items: [], nextCursor: null })
      : Response.json({ error: { code: "unauthorized", message: "no" } }, { status: 401 })
  })

describe("SignIn", () => {
  it("says a refused key is not valid, and hands an accepted one on", async () => {
    const fetch = server("lt_good")
    vi.stubGlobal("fetch", fetch)
    const onSignIn = vi.fn()
    render(() => <SignIn onSignIn={onSignIn} />)
    const input = screen.getByLabelText("API key")
    const submit = screen.getByRole("button", { name: "Sign in" })
    expect((submit as HTMLButtonElement).disabled).toBe(true)

    fireEvent.input(input, { target: { value: "lt_bad" } })
    fireEvent.click(submit)
    expect((await screen.findByRole("alert")).textContent).toContain("not valid")
    expect(onSignIn).not.toHaveBeenCalled()

    fireEvent.input(input, { target: { value: " lt_good " } })
    fireEvent.click(submit)
    await vi.waitFor(() => expect(onSignIn).toHaveBeenCalledWith("lt_good"))
    // the key went in a header, never in a URL
    for (const [url] of fetch.mock.calls) expect(String(url)).not.toContain("lt_")
  })
})
