// llama.cpp's own programs as peers, built from the source node-llama-cpp ships (`npm run
// bench:anchors`): llama-bench (plain decoding), llama-speculative-simple (a draft model),
// llama-lookup (prompt lookup), llama-lookahead (W 15, N 5, G 15, fixed in that program). Each
// runs as a child process on the same model file and prompts; its own report of decoding speed
// ("decoded N tokens in T seconds, speed: S t/s") is what is compared.

import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cacheDir } from "../../planner/passCost.js";
import { packageRoot } from "../../targets/llamaCpp/packages.js";

/** The programs `npm run bench:anchors` builds (llama-simple: a plain-decoding check). */
export const NATIVE_PROGRAMS = ["llama-bench", "llama-speculative-simple", "llama-lookup", "llama-lookahead", "llama-simple"] as const;
export type NativeProgram = (typeof NATIVE_PROGRAMS)[number];

/** The release tag of node-llama-cpp's llama.cpp (the anchors are built from that source). */
export function llamaTag(): string {
  const root = packageRoot("node-llama-cpp");
  try {
    return (JSON.parse(readFileSync(join(root ?? "", "llama", "llama.cpp.info.json"), "utf8")) as { tag: string }).tag;
  } catch {
    return "unknown";
  }
}

/** Where `npm run bench:anchors` builds them: $SPECDEC_ANCHORS_DIR, else <cache>/llama.cpp-<tag>. */
export function anchorsDir(): string {
  return process.env.SPECDEC_ANCHORS_DIR ?? join(cacheDir(), `llama.cpp-${llamaTag()}`);
}

/** A built program's path, or undefined. */
export function nativeProgram(name: NativeProgram): string | undefined {
  const p = join(anchorsDir(), "build", "bin", name);
  return existsSync(p) ? p : undefined;
}

export interface NativeRun {
  /** Generated tokens the program reports, and its decoding speed (tokens/s, prompt excluded). */
  readonly tokens: number;
  readonly tokensPerSecond: number;
  /** Guesses drafted and accepted, when the program reports them. */
  readonly drafted?: number;
  readonly accepted?: number;
}

/** Run a speculative example on one prompt (greedy); undefined when it is not built or fails. */
export function runNativeExample(program: Exclude<NativeProgram, "llama-bench" | "llama-simple">, args: { model: string; draftModel?: string; prompt: string; maxTokens: number; draftMax?: number; threads: number; contextSize: number }): NativeRun | undefined {
  const bin = nativeProgram(program);
  if (!bin) return undefined;
  const dir = mkdtempSync(join(tmpdir(), "specdec-native-"));
  try {
    const promptFile = join(dir, "prompt.txt");
    writeFileSync(promptFile, args.prompt);
    const argv = ["-m", args.model, "-f", promptFile, "-n", String(args.maxTokens), "-t", String(args.threads), "-tb", String(args.threads), "-c", String(args.contextSize), "--temp", "0", "--seed", "0", "-ngl", "0"];
    if (program === "llama-speculative-simple") argv.push("-md", args.draftModel!, "-td", String(args.threads), "--spec-type", "draft-simple", "--spec-draft-n-max", String(args.draftMax ?? 4), "--spec-draft-n-min", "0");
    if (program === "llama-lookup") argv.push("--spec-draft-n-max", String(args.draftMax ?? 4));
    const r = spawnSync(bin, argv, { encoding: "utf8", timeout: 600_000, maxBuffer: 64 << 20 });
    const log = `${r.stdout}\n${r.stderr}`;
    const m = /decoded\s+(\d+) tokens in\s+([\d.]+) seconds, speed:\s+([\d.]+) t\/s/.exec(log);
    if (r.status !== 0 || !m) return undefined;
    const num = (re: RegExp) => {
      const x = re.exec(log);
      return x ? Number(x[1]) : undefined;
    };
    return { tokens: Number(m[1]), tokensPerSecond: Number(m[3]), drafted: num(/n_drafted\s*=\s*(\d+)/), accepted: num(/n_accept\s*=\s*(\d+)/) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** llama-bench's plain generation speed (tg) at a thread count; undefined when not built. */
export function runNativePlain(model: string, maxTokens: number, threads: number): number | undefined {
  const bin = nativeProgram("llama-bench");
  if (!bin) return undefined;
  const r = spawnSync(bin, ["-m", model, "-p", "0", "-n", String(maxTokens), "-t", String(threads), "-ngl", "0", "-r", "3", "-o", "json"], { encoding: "utf8", timeout: 600_000 });
  if (r.status !== 0) return undefined;
  try {
    const rows = JSON.parse(r.stdout) as { avg_ts?: number; n_gen?: number }[];
    return rows.find((x) => (x.n_gen ?? 0) > 0)?.avg_ts;
  } catch {
    return undefined;
  }
}
