// A `specdec bench` prompts file from the TinyStories validation head in the shared folder:
// `count` held-out paragraphs (the ones the default family's recipes hold out) as retell prompts
// (the paragraph, a blank line, its first sentence again) and as continue prompts (the first
// sentence alone). Written to stdout as JSON Lines, so the repository holds no corpus text:
//   node dist/bench/heldOutPrompts.js --count 6 > /tmp/heldout.jsonl
import { firstSentence, heldOutParagraphs } from "./prompts.js";

const at = process.argv.indexOf("--count");
const count = at >= 0 ? Number(process.argv[at + 1]) : 6;
if (!Number.isInteger(count) || count < 1 || count > 200) {
  process.stderr.write("heldOutPrompts: --count takes an integer from 1 to 200\n");
  process.exit(1);
}
const paragraphs = heldOutParagraphs(count);
for (const p of paragraphs) process.stdout.write(JSON.stringify({ prompt: `${p}\n\n${firstSentence(p)}`, category: "retell" }) + "\n");
for (const p of paragraphs) process.stdout.write(JSON.stringify({ prompt: firstSentence(p), category: "continue" }) + "\n");
