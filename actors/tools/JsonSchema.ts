// The JSON Schema keywords tool parameters use, checked before a call (ADR 0043): type, properties, required,
// additionalProperties, items, enum, const, minimum/maximum, minLength/maxLength, minItems/maxItems. Keywords it
// does not know are not checked (the model's arguments only need to be plausible; the API has the last word).
// Each problem names its path (`city`, `items.2`).
type Schema = Record<string, unknown>

const typeOf = (v: unknown): string =>
  v === null ? "null" : Array.isArray(v) ? "array" : typeof v === "number" && Number.isInteger(v) ? "integer" : typeof v

const matchesType = (v: unknown, t: unknown): boolean => {
  const types = Array.isArray(t) ? t : [t]
  const actual = typeOf(v)
  return types.some((x) => x === actual || (x === "number" && actual === "integer"))
}

const at = (path: string, key: string | number) => (path === "" ? String(key) : `${path}.${key}`)

export const validate = (schema: unknown, value: unknown, path = ""): ReadonlyArray<string> => {
  if (typeof schema !== "object" || schema === null) return []
  const s = schema as Schema
  const where = path === "" ? "the arguments" : path
  if (s["type"] !== undefined && !matchesType(value, s["type"])) {
    return [`${where} must be ${Array.isArray(s["type"]) ? s["type"].join(" or ") : String(s["type"])}`]
  }
  const out: Array<string> = []
  if (Array.isArray(s["enum"]) && !s["enum"].some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    out.push(`${where} must be one of ${s["enum"].map((e) => JSON.stringify(e)).join(", ")}`)
  }
  if ("const" in s && JSON.stringify(s["const"]) !== JSON.stringify(value)) {
    out.push(`${where} must be ${JSON.stringify(s["const"])}`)
  }
  if (typeof value === "number") {
    if (typeof s["minimum"] === "number" && value < s["minimum"]) out.push(`${where} must be at least ${s["minimum"]}`)
    if (typeof s["maximum"] === "number" && value > s["maximum"]) out.push(`${where} must be at most ${s["maximum"]}`)
  }
  if (typeof value === "string") {
    if (typeof s["minLength"] === "number" && value.length < s["minLength"]) {
      out.push(`${where} must have at least ${s["minLength"]} characters`)
    }
    if (typeof s["maxLength"] === "number" && value.length > s["maxLength"]) {
      out.push(`${where} must have at most ${s["maxLength"]} characters`)
    }
  }
  if (Array.isArray(value)) {
    if (typeof s["minItems"] === "number" && value.length < s["minItems"])
      out.push(`${where} needs ${s["minItems"]} items`)
    if (typeof s["maxItems"] === "number" && value.length > s["maxItems"]) {
      out.push(`${where} may have ${s["maxItems"]} items at most`)
    }
    if (typeof s["items"] === "object") value.forEach((v, i) => out.push(...validate(s["items"], v, at(path, i))))
  }
  if (typeOf(value) === "object") {
    const obj = value as Record<string, unknown>
    const properties =
      (typeof s["properties"] === "object" && s["properties"] !== null ? s["properties"] : {}) as Schema
    if (Array.isArray(s["required"])) {
      for (const name of s["required"]) if (!(String(name) in obj)) out.push(`${at(path, String(name))} is required`)
    }
    for (const [name, v] of Object.entries(obj)) {
      if (name in properties) out.push(...validate(properties[name], v, at(path, name)))
      else if (s["additionalProperties"] === false) out.push(`${at(path, name)} is not a known argument`)
    }
  }
  return out
}
