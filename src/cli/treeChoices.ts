// The command-line form of a static tree shape ("0;1;0,0") and its JSON form.
import { SpecdecError } from "../errors.js";
import { normalizeTreeChoices, type TreeChoices } from "../drafters/draftTree.js";

/**
 * Parse a shape from a command-line string: paths separated by ";", ranks by "," — e.g.
 * "0;1;0,0;0,1;1,0" — or the JSON form "[[0],[1],[0,0],[0,1],[1,0]]". Whitespace is ignored.
 * Returns the normalised shape; throws a `SpecdecError` that says what is wrong otherwise.
 */
export function parseTreeChoices(text: string): number[][] {
  const s = text.replace(/\s+/g, "");
  if (s === "") throw new SpecdecError(`tree choices: empty; expected paths like "0;1;0,0" (";" between paths, "," between ranks)`);
  if (s.startsWith("[")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(s);
    } catch {
      throw new SpecdecError(`tree choices: "${text}" is not valid JSON; expected e.g. [[0],[1],[0,0]]`);
    }
    if (!Array.isArray(parsed) || !parsed.every((p) => Array.isArray(p))) throw new SpecdecError(`tree choices: "${text}" must be a list of lists of ranks, e.g. [[0],[1],[0,0]]`);
    return normalizeTreeChoices(parsed as number[][]);
  }
  const paths = s.split(";").map((part, i) => {
    if (part === "") throw new SpecdecError(`tree choices: path ${i + 1} of "${text}" is empty (stray ";"?)`);
    return part.split(",").map((r) => {
      if (!/^\d+$/.test(r)) throw new SpecdecError(`tree choices: path ${i + 1} ("${part}") has rank "${r}"; ranks are non-negative integers`);
      return Number(r);
    });
  });
  return normalizeTreeChoices(paths);
}

/** The command-line form of a shape ("0;1;0,0"). */
export function formatTreeChoices(choices: TreeChoices): string {
  return choices.map((p) => p.join(",")).join(";");
}

