// Method options on the command line: one flag per option name of the registered methods
// (`ngramMax` → `--ngram-max`), its text parsed by the option's kind; a run passes on the chosen
// method's values and refuses flags that belong to other methods.
import { InvalidArgumentError, Option, type Command } from "commander";
import type { MethodOption, MethodOptionValues } from "../drafters/method.js";
import { OptionError, SpecdecError } from "../errors.js";
import { methodNamed, methods } from "../methods.js";
import { formatTreeChoices, parseTreeChoices } from "./treeChoices.js";
import { integer } from "./options.js";

/** The flag of an option name: `ngramMax` → `--ngram-max`. */
export function flagOf(name: string): string {
  return "--" + name.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

/** Every method option, by name, with the methods that take it (and each one's spec). */
function allOptions(): Map<string, { spec: MethodOption; methods: string[]; specs: MethodOption[] }> {
  const all = new Map<string, { spec: MethodOption; methods: string[]; specs: MethodOption[] }>();
  for (const m of methods()) {
    for (const [name, spec] of Object.entries(m.options)) {
      const seen = all.get(name);
      if (seen && seen.spec.kind !== spec.kind) throw new Error(`methods disagree on the kind of option ${name}`);
      if (seen) {
        seen.methods.push(m.name);
        seen.specs.push(spec);
      } else all.set(name, { spec, methods: [m.name], specs: [spec] });
    }
  }
  return all;
}

function parserOf(name: string, spec: MethodOption): (text: string) => unknown {
  switch (spec.kind) {
    case "integer":
      return integer(spec.min ?? Number.MIN_SAFE_INTEGER, spec.max);
    case "file":
      return (text) => text;
    case "treeChoices":
      return (text) => {
        try {
          return parseTreeChoices(text);
        } catch (e) {
          throw e instanceof SpecdecError ? new InvalidArgumentError(e.message) : e;
        }
      };
    case "integers":
      return (text) => {
        const fields = spec.fields!;
        const parts = text.split(",").map((s) => s.trim());
        if (parts.length !== fields.length || parts.some((p) => !/^-?\d+$/.test(p))) throw new InvalidArgumentError(`${flagOf(name)} takes ${fields.length} integers ${fields.join(",")}, got '${text}'.`);
        return Object.fromEntries(fields.map((f, i) => [f, Number(parts[i])]));
      };
  }
}

function metavar(spec: MethodOption): string {
  switch (spec.kind) {
    case "integer":
      return "<n>";
    case "file":
      return "<file>";
    case "treeChoices":
      return "<shape>";
    case "integers":
      return `<${spec.fields!.map((f) => f[0].toUpperCase()).join(",")}>`;
  }
}

function shown(spec: MethodOption): string {
  const d = spec.default;
  if (d === undefined) return "";
  if (spec.kind === "treeChoices") return (d as number[][]).length > 12 ? `; default: a ${(d as number[][]).length}-path candidate space` : `; default "${formatTreeChoices(d as number[][])}"`;
  if (spec.kind === "integers") return `; default ${spec.fields!.map((f) => (d as Record<string, number>)[f]).join(",")}`;
  return `; default ${String(d)}`;
}

/** Add a flag for every method option to a command (no commander defaults: given values are told apart). */
export function addMethodOptions(cmd: Command): Command {
  for (const [name, { spec, methods: ms, specs }] of allOptions()) {
    const family = spec.familyFile ? "; default with the default target: its own in models/" : "";
    // Methods sharing an option name may default differently: then each default is named.
    const defaults = specs.map(shown);
    const shownDefaults = defaults.every((d) => d === defaults[0]) ? defaults[0] : `; default ${ms.map((m, i) => `${m} ${defaults[i].replace(/^; default /, "")}`).join(", ")}`;
    cmd.addOption(new Option(`${flagOf(name)} ${metavar(spec)}`, `${ms.join(", ")}: ${spec.description}${shownDefaults}${family}`).argParser(parserOf(name, spec)));
  }
  return cmd;
}

/** The chosen method's options from parsed command-line values; a flag of another method is an error. */
export function methodOptionsFrom(method: string, parsed: Record<string, unknown>): MethodOptionValues {
  const own = methodNamed(method).options;
  const out: Record<string, unknown> = {};
  for (const [name, { methods: ms }] of allOptions()) {
    if (parsed[name] === undefined) continue;
    if (!(name in own)) throw new SpecdecError(`${flagOf(name)} is only used by --method ${ms.join(" / ")} (got --method ${method})`);
    out[name] = parsed[name];
  }
  return out;
}

/** Every method option given on the command line, whichever methods take it (the server's defaults for all methods). */
export function givenMethodOptions(parsed: Record<string, unknown>): MethodOptionValues {
  return Object.fromEntries([...allOptions().keys()].filter((name) => parsed[name] !== undefined).map((name) => [name, parsed[name]]));
}

/** A library error as the command line says it: options named by their flags. */
export function cliMessage(e: SpecdecError): string {
  return e instanceof OptionError ? e.render(flagOf) : e.message;
}
