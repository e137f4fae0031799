// Emmett-style specifications for a Decider: given(decider, events).when(command).then(events) or
// .thenFails(tag). Pure: no bus, no journal, just fold → decide → compare. Test-only (uses vitest's expect).
import { Result } from "effect"
import { expect } from "vitest"
import { type Decider, fold } from "./Decider.ts"

export interface When<E, Err extends { readonly _tag: string }> {
  /** Asserts that the command is accepted and produces exactly `expected` (`[]` for an idempotent no-op). */
  readonly then: (expected: ReadonlyArray<E>) => void
  /** Asserts that the command is refused with the error tagged `tag`; returns it for further assertions. */
  readonly thenFails: <Tag extends Err["_tag"]>(tag: Tag) => Extract<Err, { readonly _tag: Tag }>
}

export interface Given<C, E, Err extends { readonly _tag: string }> {
  readonly when: (command: C) => When<E, Err>
}

const show = (value: unknown) => JSON.stringify(value)

/**
 * Folds `events` (the history) into a state and prepares `command` for decision against it. Beware that the
 * returned object has a `then` method: assert on it, never `await` or return it from a test.
 */
export const given = <S, C, E, Err extends { readonly _tag: string }>(
  decider: Decider<S, C, E, Err>,
  events: ReadonlyArray<E> = []
): Given<C, E, Err> => ({
  when: (command) => {
    const state = fold(decider, events)
    const decided = decider.decide(command, state)
    return {
      then: (expected) => {
        if (Result.isFailure(decided)) {
          expect.unreachable(`expected events but ${show(command)} was refused with ${show(decided.failure)}`)
        } else {
          expect(decided.success).toEqual(expected)
          // whatever a decider emits, its own evolve must be able to apply
          expect(() => fold(decider, decided.success, state)).not.toThrow()
        }
      },
      thenFails: (tag) => {
        if (Result.isSuccess(decided)) {
          return expect.unreachable(`expected ${tag} but ${show(command)} produced ${show(decided.success)}`)
        }
        expect(decided.failure._tag).toBe(tag)
        return decided.failure as Extract<Err, { readonly _tag: typeof tag }>
      }
    }
  }
})
