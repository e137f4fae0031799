// The three states of something a view reads: its error as an alert, "Loading …" until it answers, then the view.
import { type Accessor, type JSX, Show } from "solid-js"

export function Loading<T>(props: {
  /** The value once read (a falsy value means not yet). */
  readonly value: T | undefined | null | false
  /** Why it could not be read, if it could not. */
  readonly error: string | null | undefined
  /** What is being read, as the fallback names it: "the task", "suites". */
  readonly what: string
  readonly children: (value: Accessor<NonNullable<T>>) => JSX.Element
}): JSX.Element {
  return (
    <>
      <Show when={props.error}>{(m) => <p role="alert" class="error">{m()}</p>}</Show>
      <Show
        when={props.value}
        fallback={
          <Show when={!props.error}>
            <p class="empty">{`Loading ${props.what}…`}</p>
          </Show>
        }
      >
        {props.children}
      </Show>
    </>
  )
}
