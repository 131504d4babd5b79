// A method = a drafter plus what a caller needs to make one: its name, default draft length,
// options (with their kinds, defaults and ranges) and the helper files it reads. One descriptor
// per method, next to its drafter; src/methods.ts lists them.
import type { DefaultModelRole } from "../defaultModels.js";
import type { Capability, Target } from "../targets/target.js";
import type { Drafter } from "./drafter.js";

/**
 * The kind of an option's value. The CLI derives each option's flag from its name
 * (`ngramMax` → `--ngram-max`) and parses its text by kind (cli/methodOptions.ts).
 *  - integer: a whole number within [min, max];
 *  - file: a path;
 *  - treeChoices: a static tree shape (TreeChoices), e.g. [[0], [1], [0, 0]];
 *  - integers: a record of whole numbers, one per name in `fields` (e.g. look-ahead's W, N, G).
 */
export type MethodOptionKind = "integer" | "file" | "treeChoices" | "integers";

export interface MethodOption {
  readonly kind: MethodOptionKind;
  readonly description: string;
  /** The value used when none is given (documented in --help); undefined = none. */
  readonly default?: unknown;
  readonly min?: number;
  readonly max?: number;
  /** For kind "integers": the field names, in command-line order. */
  readonly fields?: readonly string[];
  /**
   * For kind "file": the default model family's file used when the target is the family's own
   * (`DEFAULT_MODEL_FILES` key); without one, the option is required.
   */
  readonly familyFile?: DefaultModelRole;
}

/** Option values by name, as the method receives them (defaults filled in, ranges checked). */
export type MethodOptionValues = Readonly<Record<string, unknown>>;

/** What a method may use to make its drafter. */
export interface MethodContext {
  /** The target the drafter will guess for (already loaded). */
  readonly target: Target;
  /** Load another model file on the target's backend with the target's settings (a helper model). */
  loadModel(path: string): Promise<Target>;
  /**
   * State that outlives one drafter, shared by every drafter made for the same opened target
   * (e.g. a cache over earlier requests' text): keyed by the method's own names. Absent = none.
   */
  readonly store?: Map<string, unknown>;
}

export interface MethodDescriptor {
  readonly name: string;
  /** One line for --help and tables. */
  readonly summary: string;
  /** Most tokens guessed ahead per step when the caller gives no draft length. */
  readonly defaultDraftMax: number;
  readonly options: Readonly<Record<string, MethodOption>>;
  /**
   * What the target must be able to do for these options (the drafter made with them lists the
   * same in `Drafter.requires`); lets a caller pick a backend before loading anything. Default none.
   */
  requires?(options: MethodOptionValues): readonly Capability[];
  create(context: MethodContext, options: MethodOptionValues): Promise<Drafter> | Drafter;
}
