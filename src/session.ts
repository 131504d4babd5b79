// Opening a run: the target (the user's model file, or the default family's) and a method's
// drafter for it. When the target is the family's own, the family's helpers fill in the files a
// method needs (its draft model, its heads); a user's own target gets no default helpers.

import { existsSync, statSync } from "node:fs";
import { defaultModels, requireDefaultModel, type DefaultModels } from "./defaultModels.js";
import type { Drafter } from "./drafters/drafter.js";
import type { MethodOptionValues } from "./drafters/method.js";
import { MethodOptionError, methodNamed, resolveMethodOptions } from "./methods.js";
import { BACKEND_CAPABILITIES, BACKENDS, loadTarget, requireCapabilities, type Backend, type TargetOptions } from "./targets/loadTarget.js";
import type { Capability, Target } from "./targets/target.js";
import { DEFAULT_TREE_NODES } from "./decode/speculativeDecode.js";
import { ARCHITECTURES } from "./engine/hparams.js";
import { SpecdecError } from "./errors.js";
import { inspectModelFile } from "./gguf/modelInfo.js";
import { CostModelPlanner } from "./planner/costModelPlanner.js";
import { cachedPassCost, measurePassCost, passCostKey, type PassCostTable } from "./planner/passCost.js";
import { FixedPlanner, type Planner } from "./planner/planner.js";

export interface TargetSpec extends TargetOptions {
  /** The target model file; default the default family's target. */
  model?: string;
  /** Default: the first backend (llama.cpp, builtin) with every capability the run needs. */
  backend?: Backend;
  /**
   * The default family whose helpers fit this model (its heavy twin computes what the family's
   * target computes, so the family's draft and heads fit it too). Default: the family, when
   * `model` is not given.
   */
  family?: DefaultModels;
  /** Where helper models (a draft model) run; see HelperBackend. Default "auto". */
  helperBackend?: HelperBackend;
}

/**
 * Where a helper model runs: "auto" puts a small one (at most HELPER_BUILTIN_MAX_BYTES of file)
 * on the built-in engine and a larger one on the target's backend; or a backend by name.
 */
export type HelperBackend = Backend | "auto";

/**
 * Helper files up to this size run on the built-in engine under "auto": a tiny model's one-token
 * pass there costs a fraction of a llama.cpp call (the family's 0.66 MB draft: 0.05 against
 * 0.18-0.22 ms, docs/measurements.md), and the drafting is what speculation pays for on top.
 */
export const HELPER_BUILTIN_MAX_BYTES = 64 * 2 ** 20;

export interface OpenedTarget {
  readonly target: Target;
  /** The target's model file. */
  readonly path: string;
  readonly backend: Backend;
  readonly options: TargetOptions;
  /** The default family, when the target is its target. */
  readonly family?: DefaultModels;
  /** State shared by the drafters made for this target (MethodContext.store). */
  readonly store: Map<string, unknown>;
  /** Where helper models run. Default "auto". */
  readonly helperBackend?: HelperBackend;
}

/** The first backend that has every capability in `needs`. */
export function defaultBackend(needs: readonly Capability[] = []): Backend {
  return BACKENDS.find((b) => needs.every((c) => BACKEND_CAPABILITIES[b][c])) ?? BACKENDS[0];
}

/** What a method needs of the target with these options (its descriptor's `requires`). */
export function methodNeeds(method: string, options: MethodOptionValues = {}): readonly Capability[] {
  const m = methodNamed(method);
  if (!m.requires) return [];
  const defaults = Object.fromEntries(Object.entries(m.options).map(([name, spec]) => [name, spec.default]));
  return m.requires({ ...defaults, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) });
}

/**
 * Load the target. With `method`, the backend (given, or the default for the method's needs) is
 * checked to have what the method needs before any file is read.
 */
export async function openTarget(spec: TargetSpec, method?: { name: string; needs: readonly Capability[] }): Promise<OpenedTarget> {
  const needs = method?.needs ?? [];
  const backend = spec.backend ?? defaultBackend(needs);
  if (method) requireCapabilities({ backend, capabilities: BACKEND_CAPABILITIES[backend] }, method.name, needs);
  const options: TargetOptions = { contextSize: spec.contextSize, threads: spec.threads, batchThreads: spec.batchThreads, maxThreads: spec.maxThreads, gpu: spec.gpu, gpuLayers: spec.gpuLayers, activations: spec.activations };
  const helperBackend = spec.helperBackend;
  if (spec.model !== undefined) return { target: await loadTarget(backend, spec.model, options), path: spec.model, backend, options, family: spec.family, store: new Map(), helperBackend };
  const family = defaultModels();
  const path = requireDefaultModel(family.target);
  return { target: await loadTarget(backend, path, options), path, backend, options, family, store: new Map(), helperBackend };
}

/**
 * Another target over the same model with a cache of its own (one per server slot): the
 * backend's `fork` where it has one (the weights are shared), else the file loaded again.
 */
export async function forkTarget(opened: OpenedTarget): Promise<Target> {
  return opened.target.fork ? opened.target.fork() : loadTarget(opened.backend, opened.path, opened.options);
}

/**
 * The options a method's drafter for this target runs with (the family's files filled in,
 * kinds and ranges checked, the target's capabilities checked), without making the drafter.
 */
export function drafterOptions(opened: OpenedTarget, method: string, options: MethodOptionValues = {}): MethodOptionValues {
  const m = methodNamed(method);
  const resolved = resolveMethodOptions(m, withFamilyFiles(method, options, opened.family));
  requireCapabilities(opened.target, method, m.requires?.(resolved) ?? []);
  return resolved;
}

/** Make a method's drafter for an opened target (helper models load on the same backend with the same settings). */
export async function openDrafter(opened: OpenedTarget, method: string, options: MethodOptionValues = {}): Promise<Drafter> {
  const resolved = drafterOptions(opened, method, options);
  return methodNamed(method).create({ target: opened.target, loadModel: (path) => loadHelper(opened, path), store: opened.store }, resolved);
}

/**
 * The backend a helper model file runs on for this target (see HelperBackend): under "auto" the
 * built-in engine for a small file of an architecture it runs, else the target's backend.
 */
export function helperBackendFor(opened: Pick<OpenedTarget, "backend" | "helperBackend">, path: string): Backend {
  const choice = opened.helperBackend ?? "auto";
  if (choice !== "auto") return choice;
  if (opened.backend === "builtin") return "builtin";
  try {
    if (statSync(path).size > HELPER_BUILTIN_MAX_BYTES) return opened.backend;
    return inspectModelFile(path).architecture in ARCHITECTURES ? "builtin" : opened.backend;
  } catch {
    return opened.backend; // a missing or damaged file: the target's backend reports it as it would
  }
}

/**
 * Load a helper model: on the target's backend with the target's settings, or on the built-in
 * engine with the target's context size and one thread (a helper small enough to go there is
 * too small to gain from a second one). Under "auto", a helper the built-in engine cannot load
 * (a tokenizer or tensor type it lacks) goes to the target's backend.
 */
export async function loadHelper(opened: OpenedTarget, path: string): Promise<Target> {
  const backend = helperBackendFor(opened, path);
  if (backend === opened.backend) return loadTarget(backend, path, opened.options);
  const options: TargetOptions = backend === "builtin" ? { contextSize: opened.options.contextSize, threads: 1 } : { contextSize: opened.options.contextSize, gpu: opened.options.gpu, gpuLayers: opened.options.gpuLayers };
  try {
    return await loadTarget(backend, path, options);
  } catch (e) {
    if ((opened.helperBackend ?? "auto") !== "auto" || !(e instanceof SpecdecError)) throw e;
    return loadTarget(opened.backend, path, opened.options);
  }
}

/** `options` with the family's file for every file option left unset, when the target is the family's. */
function withFamilyFiles(method: string, options: MethodOptionValues, family: DefaultModels | undefined): MethodOptionValues {
  const out: Record<string, unknown> = { ...options };
  if (!family) return out;
  for (const [name, spec] of Object.entries(methodNamed(method).options)) {
    if (spec.kind !== "file" || out[name] !== undefined || !spec.familyFile) continue;
    const path = family[spec.familyFile];
    if (!existsSync(path)) throw new MethodOptionError(method, name, `has no default: the default family's file is missing at ${path}`);
    out[name] = path;
  }
  return out;
}

export interface PlannerSpec {
  /** A fixed draft length: the cost model is not used. */
  draftMax?: number;
  /** A fixed node count per tree: the cost model is not used. */
  treeNodes?: number;
  /** Fixed budget without a draftMax: the method's default draft length (and 24 nodes). */
  fixed?: boolean;
  /** The read mode of the run's verifier (what the pass costs are measured with). Default "argmax". */
  read?: "argmax" | "probabilities";
  /** Passes also return hidden states (a method that reads them): measured so. Default: what the method needs. */
  hidden?: boolean;
  /** Measure the pass costs again instead of using the cached table. */
  refresh?: boolean;
  /** Called while pass costs are measured (done, total). */
  onMeasure?: (done: number, total: number) => void;
}

/**
 * How a run chooses its budget: a given draftMax / treeNodes (or `fixed`) wins; otherwise the
 * cost model over this target's measured pass costs (cached per model file, backend, settings
 * and machine; measured on first use).
 */
export async function openPlanner(opened: OpenedTarget, method: string, spec: PlannerSpec = {}): Promise<Planner> {
  const m = methodNamed(method);
  const costSpec = { ...spec, hidden: spec.hidden ?? readsHidden(method) };
  if (spec.fixed || spec.draftMax !== undefined || spec.treeNodes !== undefined || m.defaultDraftMax === 0) {
    // Where passes choose their threads (--threads auto), a fixed budget still takes the fastest count per pass.
    const cost = opened.target.threadCounts ? await openPassCost(opened, costSpec) : undefined;
    return new FixedPlanner(spec.draftMax ?? m.defaultDraftMax, spec.treeNodes ?? DEFAULT_TREE_NODES, cost);
  }
  return new CostModelPlanner(await openPassCost(opened, costSpec));
}

/** Whether a method's passes return hidden states (with its default options). */
export function readsHidden(method: string): boolean {
  return methodNeeds(method).includes("hiddenStates");
}

/** The target's pass-cost table (cached; measured on first use). */
export async function openPassCost(opened: OpenedTarget, spec: Pick<PlannerSpec, "read" | "hidden" | "refresh" | "onMeasure"> = {}): Promise<PassCostTable> {
  const read = spec.read ?? "argmax";
  const hidden = spec.hidden === true;
  const key = passCostKey(opened.path, opened.target, { read, options: opened.options, ...(hidden ? { hidden } : {}) });
  return cachedPassCost(key, () => measurePassCost(opened.target, { read, hidden, onProgress: spec.onMeasure }), spec.refresh);
}
