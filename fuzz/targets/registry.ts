// The fuzz targets by name (see target.ts for how to add one, e.g. `specdec serve`).
import { cliTarget } from "./cli.js";
import { builtinTarget, llamaCppTarget } from "./generate.js";
import { readerTarget } from "./reader.js";
import type { FuzzTarget, TargetName } from "./target.js";
import { tokenizerTarget } from "./tokenizer.js";

export const TARGETS: Readonly<Record<TargetName, FuzzTarget>> = {
  reader: readerTarget,
  tokenizer: tokenizerTarget,
  builtin: builtinTarget,
  llamacpp: llamaCppTarget,
  cli: cliTarget,
};
