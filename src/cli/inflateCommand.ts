// `specdec inflate`: write a model's heavy twin (src/inflate.ts).
import { Command, Option } from "commander";
import { existsSync } from "node:fs";
import { SpecdecError } from "../errors.js";
import { INFLATE_TYPES, inflateModel, parseParamCount, type InflateType } from "../inflate.js";
import { integer } from "./options.js";

interface InflateCliOptions {
  model: string;
  params?: string;
  ffn?: number;
  type: InflateType;
  out: string;
  force?: boolean;
}

export function addInflateCommand(cli: Command): void {
  cli
    .command("inflate")
    .description("write a heavy twin of a llama/qwen2 model: the same function as the original quantized the same way (zero-valued feed-forward units), the weight traffic of a larger model — a benchmark fixture")
    .requiredOption("--model <file>", "the model to inflate (GGUF, llama or qwen2)")
    .option("--params <count>", "the twin's parameter count, e.g. 100M (the feed-forward length is chosen to reach it)")
    .option("--ffn <n>", "or the twin's feed-forward length", integer(1, 1 << 22))
    .addOption(new Option("--type <type>", "storage type of every matrix (norms and biases stay f32)").choices(Object.keys(INFLATE_TYPES)).default("q8_0"))
    .requiredOption("--out <file>", "where to write the twin (GGUF)")
    .option("--force", "overwrite --out if it exists")
    .action(runInflate);
}

async function runInflate(o: InflateCliOptions): Promise<void> {
  if ((o.params === undefined) === (o.ffn === undefined)) throw new SpecdecError("give exactly one of --params and --ffn");
  if (existsSync(o.out) && !o.force) throw new SpecdecError(`${o.out} already exists: pass --force to replace it`);
  const tty = process.stderr.isTTY;
  const r = inflateModel(o.model, o.out, {
    ffn: o.ffn,
    params: o.params === undefined ? undefined : parseParamCount(o.params),
    type: o.type,
    overwrite: o.force,
    onProgress: (done, total) => {
      if (tty) process.stderr.write(`\r\x1b[Kinflating: tensor ${done}/${total}`);
      else if (done === total) process.stderr.write(`inflating: ${total} tensors\n`);
    },
  });
  if (tty) process.stderr.write("\n");
  process.stdout.write(`${o.out}: ${r.architecture}, feed-forward ${r.ffnFrom} -> ${r.ffnTo}, ${r.paramsFrom.toLocaleString("en")} -> ${r.params.toLocaleString("en")} parameters, ${(r.bytes / 1e6).toFixed(1)} MB of ${o.type} weights\n`);
}
