// Option value parsers: each rejects bad input with a one-line message commander prints as is.
import { InvalidArgumentError } from "commander";

export function integer(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isInteger(n)) throw new InvalidArgumentError(`expected an integer, got '${value}'.`);
    if (n < min || n > max) throw new InvalidArgumentError(`must be between ${min} and ${max}.`);
    return n;
  };
}

export function real(min: number, max: number, { minExclusive = false } = {}) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got '${value}'.`);
    if (n < min || n > max || (minExclusive && n === min)) throw new InvalidArgumentError(`must be ${minExclusive ? "above" : "at least"} ${min} and at most ${max}.`);
    return n;
  };
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** A repeatable string option whose values must not be empty (`what` names one in the message). */
export function nonEmpty(what: string) {
  return (value: string, previous: string[] = []): string[] => {
    if (value === "") throw new InvalidArgumentError(`${what} must not be empty.`);
    return collect(value, previous);
  };
}
