// Who is signed in: the API key, kept in this tab's sessionStorage (gone when the tab closes, never in a URL).
import { createSignal } from "solid-js"

const KEY = "lantern.apiKey"

const read = (): string | null => {
  try {
    return sessionStorage.getItem(KEY)
  } catch {
    return null
  }
}

/** The session of one app instance: its key as a signal, and sign-in and sign-out that keep sessionStorage in step. */
export const createSession = () => {
  const [token, setToken] = createSignal<string | null>(read())
  return {
    token,
    signIn: (key: string) => {
      sessionStorage.setItem(KEY, key)
      setToken(key)
    },
    signOut: () => {
      sessionStorage.removeItem(KEY)
      setToken(null)
    }
  }
}
export type Session = ReturnType<typeof createSession>
