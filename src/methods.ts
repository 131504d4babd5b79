// The registry of methods: name → descriptor (each next to its drafter, in drafters/). The CLI,
// the demo, the benchmarks and the server look methods up here; adding a method is one file in
// drafters/ and one line below (or `registerMethod` from outside).

import { OptionError, SpecdecError } from "./errors.js";
import { normalizeTreeChoices } from "./drafters/draftTree.js";
import type { Drafter } from "./drafters/drafter.js";
import type { MethodContext, MethodDescriptor, MethodOption, MethodOptionValues } from "./drafters/method.js";
import { blindMethod } from "./drafters/blind.js";
import { draftModelMethod } from "./drafters/draftModel.js";
import { eagleMethod } from "./drafters/eagle.js";
import { lookaheadMethod } from "./drafters/lookahead.js";
import { medusaMethod } from "./drafters/medusa.js";
import { noneMethod } from "./drafters/none.js";
import { promptLookupMethod } from "./drafters/promptLookup.js";
import { suffixMethod } from "./drafters/suffix.js";

const registry = new Map<string, MethodDescriptor>();
for (const m of [noneMethod, blindMethod, promptLookupMethod, draftModelMethod, lookaheadMethod, medusaMethod, suffixMethod, eagleMethod]) registry.set(m.name, m);

/** Add a method (or replace one of the same name). */
export function registerMethod(method: MethodDescriptor): void {
  registry.set(method.name, method);
}

/** Every registered method, in registration order. */
export function methods(): MethodDescriptor[] {
  return [...registry.values()];
}

export function methodNamed(name: string): MethodDescriptor {
  const m = registry.get(name);
  if (!m) throw new SpecdecError(`unknown method '${name}' (choose one of: ${[...registry.keys()].join(", ")})`);
  return m;
}

/** An error about one option of a method: the CLI names the option by its flag. */
export class MethodOptionError extends OptionError {
  constructor(readonly method: string, readonly option: string, detail: string) {
    super(`method '${method}': {${option}} ${detail}`);
  }
}

/**
 * The options a method runs with: the given ones checked against its descriptor (unknown names,
 * kinds, ranges), the rest filled with their defaults. A file option without a value and
 * without a default is an error naming the option.
 */
export function resolveMethodOptions(method: MethodDescriptor, given: MethodOptionValues = {}): MethodOptionValues {
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(given)) {
    if (given[name] !== undefined && !(name in method.options))
      throw new SpecdecError(`method '${method.name}' has no option ${name} (its options: ${Object.keys(method.options).join(", ") || "none"})`);
  }
  for (const [name, spec] of Object.entries(method.options)) {
    const value = given[name] ?? spec.default;
    if (value === undefined) {
      if (spec.kind === "file") throw new OptionError(`method '${method.name}' needs ${spec.description}: {${name}} FILE`);
      continue;
    }
    out[name] = checkOption(method.name, name, spec, value);
  }
  return out;
}

function checkOption(method: string, name: string, spec: MethodOption, value: unknown): unknown {
  const fail = (detail: string): never => {
    throw new MethodOptionError(method, name, detail);
  };
  const integer = (v: unknown, what: string) => {
    if (typeof v !== "number" || !Number.isInteger(v)) fail(`${what}must be an integer, got ${JSON.stringify(v)}`);
    if ((spec.min !== undefined && (v as number) < spec.min) || (spec.max !== undefined && (v as number) > spec.max)) fail(`${what}must be between ${spec.min} and ${spec.max}, got ${v}`);
    return v as number;
  };
  switch (spec.kind) {
    case "integer":
      return integer(value, "");
    case "file":
      if (typeof value !== "string" || value === "") fail("must be a file path");
      return value;
    case "treeChoices":
      if (!Array.isArray(value)) fail("must be a list of paths of ranks, e.g. [[0], [1], [0, 0]]");
      return normalizeTreeChoices(value as number[][]);
    case "integers": {
      if (typeof value !== "object" || value === null) fail(`must be an object with ${spec.fields!.join(", ")}`);
      const v = value as Record<string, unknown>;
      return Object.fromEntries(spec.fields!.map((f) => [f, v[f] === undefined ? undefined : integer(v[f], `${f} `)]));
    }
  }
}

/** Make a method's drafter for a loaded target. */
export async function createDrafter(name: string, context: MethodContext, options: MethodOptionValues = {}): Promise<Drafter> {
  const method = methodNamed(name);
  return method.create(context, resolveMethodOptions(method, options));
}
