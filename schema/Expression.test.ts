import { describe, expect, it } from "vitest"
import * as Expression from "./Expression.ts"

const scope: Expression.Scope = {
  input: { x: 3, name: "ana", tags: ["a", "b"], nested: { deep: [{ v: true }] } },
  steps: { classify: { text: "this is URGENT" }, "my-node": { output: "7" } },
  loop: { item: "b", index: 1 }
}
const run = (source: string) => Expression.evaluate(Expression.parse(source), scope)

describe("the expression language", () => {
  it("reads paths, indexes and lengths, and null for a path that leads nowhere", () => {
    expect(run("input.x")).toBe(3)
    expect(run("input.nested.deep[0].v")).toBe(true)
    expect(run("input['name']")).toBe("ana")
    expect(run("steps.my-node.output")).toBe("7")
    expect(run("input.tags.length")).toBe(2)
    expect(run("loop.item")).toBe("b")
    expect(run("input.missing.more")).toBe(null)
  })

  it("compares, tests containment and combines with && || ! and parentheses", () => {
    expect(run("input.x == 3")).toBe(true)
    expect(run("input.x != 3")).toBe(false)
    expect(run("input.x < 4 && input.x >= 3")).toBe(true)
    expect(run("input.x > 4 || input.name == 'ana'")).toBe(true)
    expect(run("!(input.x <= 2)")).toBe(true)
    expect(run("steps.classify.text contains \"URGENT\"")).toBe(true)
    expect(run("input.tags contains loop.item")).toBe(true)
    expect(run("input.tags contains 'z'")).toBe(false)
    expect(run("input.x < 'a'")).toBe(false)
    expect(run("null == input.nope")).toBe(true)
    expect(run("-1.5 < 0")).toBe(true)
  })

  it("cannot reach globals, prototypes or anything outside its scope", () => {
    for (const source of ["globalThis", "process.env", "constructor", "Function('return 1')", "this"]) {
      expect(() => Expression.parse(source), source).toThrow(/unknown name|unexpected/)
    }
    for (const source of ["input.constructor", "input.__proto__", "steps.prototype", "input['constructor']"]) {
      expect(() => Expression.parse(source), source).toThrow(/cannot be read/)
    }
    // own properties only: inherited ones read as null
    expect(run("input.toString")).toBe(null)
    expect(run("input.tags.map")).toBe(null)
    expect(run("input.name.valueOf")).toBe(null)
    expect(Expression.evaluate(Expression.parse("input.x"), Object.create({ input: { x: 1 } }))).toBe(null)
  })

  it("refuses what does not parse, saying where", () => {
    expect(() => Expression.parse("")).toThrow("empty")
    expect(() => Expression.parse("input.x ==")).toThrow("expected a value")
    expect(() => Expression.parse("input.x = 1")).toThrow("unexpected character '='")
    expect(() => Expression.parse("(input.x")).toThrow("expected ')'")
    expect(() => Expression.parse("'open")).toThrow("unterminated")
    expect(() => Expression.parse("input.x input.y")).toThrow("unexpected 'input'")
    expect(() => Expression.parse("(".repeat(100) + "1" + ")".repeat(100))).toThrow("nested")
  })

  it("renders templates: text in a string, the value itself when the string is one {{…}}", () => {
    expect(Expression.render("Hello {{input.name}}, x={{ input.x }}", scope)).toBe("Hello ana, x=3")
    expect(Expression.render("{{input.tags}}", scope)).toEqual(["a", "b"])
    expect(Expression.render("tags: {{input.tags}} {{input.none}}!", scope)).toBe("tags: [\"a\",\"b\"] !")
    expect(Expression.renderDeep({ text: "{{steps.classify.text}}", n: 1, list: ["{{loop.index}}"] }, scope))
      .toEqual({ text: "this is URGENT", n: 1, list: [1] })
    expect(() => Expression.parseTemplate("ok {{input.x}} then {{window.x}}")).toThrow("{{window.x}}")
  })
})
