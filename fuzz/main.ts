// `npm run fuzz [-- --cases N --seed S --target T --reproduce ID]`: run a campaign and print
// its summary, or rebuild one case and run it in the foreground.

import { Command, InvalidArgumentError, Option } from "commander";
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCampaign, TARGET_WEIGHTS } from "./campaign.js";
import { failureList, summaryTable, unexpectedFailures } from "./report.js";
import { runCase } from "./runCase.js";
import { TARGETS } from "./targets/registry.js";
import { TARGET_NAMES, type TargetName } from "./targets/target.js";

const positive = (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError("expected a non-negative integer.");
  return n;
};

interface FuzzCliOptions {
  cases: number;
  seed: number;
  target: TargetName | "all";
  workers?: number;
  memory: number;
  out?: string;
  reproduce?: string;
  countKnown?: boolean;
}

async function reproduce(seed: number, id: string, out: string): Promise<void> {
  const [target, index] = id.split(":");
  if (!(TARGET_NAMES as readonly string[]).includes(target) || !/^\d+$/.test(index ?? "")) throw new InvalidArgumentError(`case ids look like reader:17 (targets: ${TARGET_NAMES.join(", ")}), got '${id}'`);
  const c = TARGETS[target as TargetName].build(seed, Number(index));
  mkdirSync(out, { recursive: true });
  const file = join(out, `${id.replace(":", "-")}.gguf`);
  console.log(`case ${c.id} of seed ${seed}${c.seedName ? `, from ${c.seedName}` : ""}:`);
  for (const w of c.what) console.log(`  ${w}`);
  if (c.file) console.log(`file: ${file}`);
  const verdict = await runCase(c, out, file);
  console.log(`verdict: ${verdict.outcome}: ${verdict.detail}`);
}

async function main(): Promise<void> {
  const cli = new Command("fuzz")
    .description("mutation fuzzing of specdec's reader, tokenizers, engines and CLI")
    .option("--cases <n>", "cases in all, shared among the targets", positive, 1000)
    .option("--seed <s>", "campaign seed: (seed, case id) rebuilds any case", positive, 1)
    .addOption(new Option("--target <name>", `one target, or all (shares ${TARGET_NAMES.map((t) => `${t} ${TARGET_WEIGHTS[t]}`).join(", ")})`).choices([...TARGET_NAMES, "all"]).default("all"))
    .option("--workers <n>", "worker processes (default: CPUs, at most 4)", positive)
    .option("--memory <MiB>", "resident memory a worker may reach in one case", positive, 1536)
    .option("--out <dir>", "where reproducers go (default <tmp>/specdec-fuzz/seed-<seed>)")
    .option("--reproduce <id>", "rebuild case <id> (e.g. reader:17), write its file and run it here, in the foreground")
    .option("--count-known", "count the failures open on other branches (knownIssues.ts) as failures")
    .parse(process.argv);
  const o = cli.opts<FuzzCliOptions>();
  const out = o.out ?? join(tmpdir(), "specdec-fuzz", `seed-${o.seed}`);
  if (o.reproduce) return reproduce(o.seed, o.reproduce, out);

  const targets = o.target === "all" ? TARGET_NAMES : [o.target];
  let lastPrint = 0;
  const result = await runCampaign({
    seed: o.seed,
    cases: o.cases,
    targets,
    workers: o.workers,
    memoryMiB: o.memory,
    reproducerDir: out,
    separateKnown: !o.countKnown,
    onProgress: (done, total) => {
      const now = performance.now();
      if (now - lastPrint > 30_000 || done === total) {
        lastPrint = now;
        process.stderr.write(`[fuzz] ${done}/${total} cases\n`);
      }
    },
  });
  console.log(`seed ${result.seed}, ${result.cases} cases on ${result.workers} workers (${result.workerStarts} worker starts) in ${(result.wallMs / 1000).toFixed(1)} s, peak worker memory ${result.peakMiB} MiB\n`);
  console.log(summaryTable(result));
  console.log("");
  console.log(failureList(result));
  if (result.reproducerDir) console.log(`\nreproducers in ${result.reproducerDir}; rerun one with: npm run fuzz -- --seed ${result.seed} --reproduce <id>`);
  if (unexpectedFailures(result) > 0) process.exitCode = 1;
}

main().catch((e) => {
  process.stderr.write(`fuzz: ${(e as Error)?.stack ?? e}\n`);
  process.exitCode = 2;
});
