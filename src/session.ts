// Opening a run: the target (the user's model file, or the default family's) and a method's
// drafter for it. When the target is the family's own, the family's helpers fill in the files a
// method needs (its draft model, its heads); a user's own target gets no default helpers.

import { existsSync } from "node:fs";
import { defaultModels, requireDefaultModel, type DefaultModels } from "./defaultModels.js";
import type { Drafter } from "./drafters/drafter.js";
import type { MethodOptionValues } from "./drafters/method.js";
import { MethodOptionError, methodNamed, resolveMethodOptions } from "./methods.js";
import { BACKEND_CAPABILITIES, BACKENDS, loadTarget, requireCapabilities, type Backend, type TargetOptions } from "./targets/loadTarget.js";
import type { Capability, Target } from "./targets/target.js";

export interface TargetSpec extends TargetOptions {
  /** The target model file; default the default family's target. */
  model?: string;
  /** Default: the first backend (llama.cpp, builtin) with every capability the run needs. */
  backend?: Backend;
}

export interface OpenedTarget {
  readonly target: Target;
  readonly backend: Backend;
  readonly options: TargetOptions;
  /** The default family, when the target is its target. */
  readonly family?: DefaultModels;
  /** State shared by the drafters made for this target (MethodContext.store). */
  readonly store: Map<string, unknown>;
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
  const options: TargetOptions = { contextSize: spec.contextSize, threads: spec.threads, batchThreads: spec.batchThreads, gpu: spec.gpu, gpuLayers: spec.gpuLayers };
  if (spec.model !== undefined) return { target: await loadTarget(backend, spec.model, options), backend, options, store: new Map() };
  const family = defaultModels();
  return { target: await loadTarget(backend, requireDefaultModel(family.target), options), backend, options, family, store: new Map() };
}

/** Make a method's drafter for an opened target (helper models load on the same backend with the same settings). */
export async function openDrafter(opened: OpenedTarget, method: string, options: MethodOptionValues = {}): Promise<Drafter> {
  const m = methodNamed(method);
  const resolved = resolveMethodOptions(m, withFamilyFiles(method, options, opened.family));
  requireCapabilities(opened.target, method, m.requires?.(resolved) ?? []);
  return m.create({ target: opened.target, loadModel: (path) => loadTarget(opened.backend, path, opened.options), store: opened.store }, resolved);
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
