// JUnit XML checked against tests/fixtures/junit.xsd by libxml2's own schema validator (xmllint compiled to wasm,
// no network, no native build): what `lantern test --junit` writes must be what CI's test reporters read.
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { validateXML } from "xmllint-wasm"
import { ROOT } from "./Stack.ts"

const SCHEMA = readFileSync(join(ROOT, "tests/fixtures/junit.xsd"), "utf8")

/** The schema's verdict on a document: valid, or libxml2's messages. */
export const validate = async (xml: string): Promise<{ valid: boolean; errors: ReadonlyArray<string> }> => {
  const result = await validateXML({ xml: [{ fileName: "junit.xml", contents: xml }], schema: [SCHEMA] })
  return { valid: result.valid, errors: result.errors.map((e) => e.rawMessage) }
}
