import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SpecdecError } from "../src/errors.js";
import { openGguf, type GgufFile } from "../src/gguf/reader.js";
import { PROJECT_ROOT, sharedFile } from "./support/sharedData.js";
import { loadTokenizer, TokenTextDecoder, type Tokenizer } from "../src/tokenizer/index.js";

const VOCAB_DIR = sharedFile("tokenizers", "gguf-vocab");

// Vocabularies whose .gguf is not in shared/ but in the llama.cpp source bundle of node-llama-cpp.
const FROM_BUNDLE = ["llama-bpe", "qwen2", "command-r"];
// Vectors in shared/ whose vocabulary file is nowhere to be found (neither shared/ nor the bundle).
const NO_VOCAB_FILE = ["chameleon", "deepseek-r1-qwen", "roberta-bpe"];
// WordPiece (BERT) vocabularies: lowercased and accent-stripped, so detokenize cannot give the text back.
const WORDPIECE = ["bert-bge"];
// Vocabularies without clean-up of spaces: the default detokenize gives the text back exactly.
const NO_CLEANUP = ["llama-spm", "phi-3", "deepseek-llm", "deepseek-coder", "qwen2", "command-r"];

// ---- test data ----

/** Extract ggml-vocab-<name>.gguf from the llama.cpp git bundle into a cache in the temp folder. */
function bundleVocab(name: string): string {
  const bundle = join(PROJECT_ROOT, "node_modules", "node-llama-cpp", "llama", "gitRelease.bundle");
  if (!existsSync(bundle)) throw new Error(`llama.cpp source bundle not found at ${bundle} (npm install node-llama-cpp)`);
  const st = statSync(bundle);
  const cache = join(tmpdir(), "specdec-llama-cpp-vocab", `${st.size}-${Math.round(st.mtimeMs)}`);
  const out = join(cache, `ggml-vocab-${name}.gguf`);
  if (existsSync(out)) return out;
  mkdirSync(cache, { recursive: true });
  const repo = join(cache, "repo.git");
  if (!existsSync(repo)) {
    // A bare clone takes a couple of seconds; rename makes it appear whole or not at all.
    const tmp = `${repo}.${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    execFileSync("git", ["clone", "-q", "--bare", bundle, tmp]);
    try {
      renameSync(tmp, repo);
    } catch {
      rmSync(tmp, { recursive: true, force: true }); // another run won the race
    }
  }
  const data = execFileSync("git", ["--git-dir", repo, "cat-file", "blob", `HEAD:models/ggml-vocab-${name}.gguf`], { maxBuffer: 1 << 30 });
  const tmp = `${out}.${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, out);
  return out;
}

function vocabPath(name: string): string {
  return FROM_BUNDLE.includes(name) ? bundleVocab(name) : join(VOCAB_DIR, `ggml-vocab-${name}.gguf`);
}

const tokenizers = new Map<string, Tokenizer>();
function tokenizer(name: string): Tokenizer {
  let t = tokenizers.get(name);
  if (!t) {
    const f = openGguf(vocabPath(name));
    try {
      t = loadTokenizer(f);
    } finally {
      f.close();
    }
    tokenizers.set(name, t);
  }
  return t;
}

interface Vector {
  text: string;
  ids: number[];
}

/** Read <name>.gguf.inp/.out the way llama.cpp's tests/test-tokenizer-0.cpp does. */
function readVectors(name: string): Vector[] {
  const raw = readFileSync(join(VOCAB_DIR, `ggml-vocab-${name}.gguf.inp`), "utf8");
  const sep = "\n__ggml_vocab_test__\n";
  const texts: string[] = [];
  // Texts are separated (and the file ended) by the separator; a tail after the last one counts too.
  for (let pos = 0; pos < raw.length; ) {
    const next = raw.indexOf(sep, pos);
    if (next < 0) {
      texts.push(raw.slice(pos));
      break;
    }
    texts.push(raw.slice(pos, next));
    pos = next + sep.length;
  }
  const lines = readFileSync(join(VOCAB_DIR, `ggml-vocab-${name}.gguf.out`), "utf8").split("\n");
  if (lines.at(-1) === "") lines.pop(); // getline() sees no line after the final newline
  assert.equal(texts.length, lines.length, `${name}: .inp has ${texts.length} texts, .out has ${lines.length} lines`);
  return texts.map((text, i) => {
    const o = lines[i].trim();
    return { text, ids: o === "" ? [] : o.split(" ").map(Number) };
  });
}

const names = (ext: string) =>
  readdirSync(VOCAB_DIR)
    .filter((f) => f.startsWith("ggml-vocab-") && f.endsWith(ext))
    .map((f) => f.slice("ggml-vocab-".length, -ext.length))
    .sort();

const VECTOR_NAMES = names(".gguf.inp");
const SHARED_VOCABS = names(".gguf");
const TESTED = VECTOR_NAMES.filter((n) => !NO_VOCAB_FILE.includes(n));

// ---- tokenization vectors ----

test("every vector file is either tested or known to lack its vocabulary file", () => {
  const noFile = VECTOR_NAMES.filter((n) => !SHARED_VOCABS.includes(n) && !FROM_BUNDLE.includes(n));
  assert.deepEqual(noFile, [...NO_VOCAB_FILE].sort());
  assert.ok(TESTED.length >= 13, `only ${TESTED.length} vocabularies tested`);
  for (const name of WORDPIECE) assert.ok(TESTED.includes(name), `${name} is not tested`);
});

for (const name of TESTED) {
  test(`tokenizes llama.cpp's vectors for ${name}`, (t) => {
    const tk = tokenizer(name);
    const vectors = readVectors(name);
    const failures: string[] = [];
    for (const v of vectors) {
      const got = tk.tokenize(v.text); // as test-tokenizer-0: add_special = false, parse_special = false
      if (got.join(" ") !== v.ids.join(" ")) failures.push(`${JSON.stringify(v.text)}: expected [${v.ids.join(" ")}] got [${got.join(" ")}]`);
    }
    t.diagnostic(`${name} (${tk.model}/${tk.pre}): ${vectors.length - failures.length}/${vectors.length} vectors pass`);
    assert.deepEqual(failures, [], `${name}: ${failures.length} of ${vectors.length} vectors fail`);
  });
}

// ---- detokenization ----

test("detokenize(tokenize(text)) gives the text back for the vocabularies without space clean-up", () => {
  for (const name of NO_CLEANUP) {
    const tk = tokenizer(name);
    for (const { text } of readVectors(name)) assert.equal(tk.detokenize(tk.tokenize(text)), text, `${name}: ${JSON.stringify(text)}`);
  }
});

test("byte-level BPE is lossless once the clean-up of spaces is turned off; the clean-up works like llama.cpp's", () => {
  for (const name of TESTED.filter((n) => !NO_CLEANUP.includes(n) && !WORDPIECE.includes(n))) {
    const tk = tokenizer(name);
    for (const { text } of readVectors(name)) assert.equal(tk.detokenize(tk.tokenize(text), { cleanSpaces: false }), text, `${name}: ${JSON.stringify(text)}`);
  }
  const gpt2 = tokenizer("gpt-2");
  assert.equal(gpt2.detokenize(gpt2.tokenize("Hello , world ! It 's ' quoted ' , isn 't it ?")), "Hello, world! It's'quoted ', isn 't it?");
});

test("WordPiece: [CLS]/[SEP], normalization, detokenize with llama.cpp's clean-up, and re-tokenizing its output", () => {
  const bert = tokenizer("bert-bge");
  assert.equal(bert.model, "bert");
  assert.equal(bert.bos, 101); // [CLS]
  assert.equal(bert.eos, -1); // llama.cpp's BERT vocabulary has no EOS: [SEP] is appended instead
  assert.ok(bert.addBos && !bert.addEos && !bert.addSpacePrefix);
  assert.deepEqual([...bert.eogTokens], []);
  const ids = bert.tokenize("Hello, World! It's", { addSpecial: true });
  assert.deepEqual(ids, [101, 7592, 1010, 2088, 999, 2009, 1005, 1055, 102]);
  assert.equal(bert.tokenText(7592), "▁hello"); // word starts carry '▁', continuations nothing ("##" in Hugging Face)
  assert.deepEqual(bert.tokenize("Hello, World! It's"), ids.slice(1, -1));
  // Pieces turn '▁' into spaces; spaces before ?!., and around a lone ' go, as in llama.cpp.
  assert.equal(bert.detokenize(ids), " hello, world! it's");
  assert.equal(bert.detokenize(ids, { cleanSpaces: false }), " hello , world ! it ' s");
  assert.equal(bert.detokenize(ids, { unparseSpecial: true }), "[CLS] hello, world! it's[SEP]");
  assert.equal(bert.detokenize(ids, { unparseSpecial: true, removeSpecial: true }), " hello, world! it's[SEP]"); // only BOS is removed
  // Lowercasing, accent stripping (NFD), control characters dropped, punctuation and CJK split off.
  assert.deepEqual(bert.tokenize("CAFÉ\u0000 De\u0301jà\u200b"), bert.tokenize("cafe deja"));
  assert.deepEqual(bert.tokenize("a.b"), bert.tokenize("a . b"));
  assert.deepEqual(bert.tokenize("中中"), bert.tokenize("中 中"));
  // A word that cannot be spelled with the vocabulary becomes one [UNK]; the words around it stay.
  assert.deepEqual(bert.tokenize("hello 你好 world"), [7592, 100, 100, 2088]);
  assert.equal(bert.detokenize([7592, 100, 2088]), " hello world"); // [UNK] prints nothing by default
  // Detokenized text tokenizes back to the same ids (vectors with an [UNK] excepted).
  let checked = 0;
  for (const { text } of readVectors("bert-bge")) {
    const t = bert.tokenize(text);
    if (t.includes(100)) continue;
    assert.deepEqual(bert.tokenize(bert.detokenize(t, { cleanSpaces: false })), t, JSON.stringify(text));
    checked++;
  }
  assert.ok(checked >= 40, `only ${checked} vectors re-tokenized`);
});

test("WordPiece: the normalizer options of the GGUF metadata are honoured", () => {
  const f = openGguf(join(VOCAB_DIR, "ggml-vocab-bert-bge.gguf"));
  try {
    const cased = loadTokenizer(withMeta(f, { "tokenizer.ggml.normalizer.lowercase": false }));
    assert.deepEqual(cased.tokenize("hello Hello"), [7592, 100]); // "▁Hello" cannot be spelled: [UNK]
    assert.deepEqual(cased.tokenize("déjà deja"), [100, 2139, 3900]); // strip_accents follows lowercase unless set...
    const accents = loadTokenizer(withMeta(f, { "tokenizer.ggml.normalizer.strip_accents": false }));
    assert.notDeepEqual(accents.tokenize("De\u0301ja"), accents.tokenize("deja")); // ...and U+0301 stays in the word
    assert.deepEqual(accents.tokenize("DEJA"), accents.tokenize("deja"));
  } finally {
    f.close();
  }
});

test("vocabularies without vectors (baichuan, gpt-neox) load and round-trip the llama-spm texts", () => {
  const extra = SHARED_VOCABS.filter((n) => !VECTOR_NAMES.includes(n));
  assert.deepEqual(extra, ["baichuan", "gpt-neox"]);
  const texts = readVectors("llama-spm").map((v) => v.text);
  for (const name of extra) {
    const tk = tokenizer(name);
    for (const text of texts) assert.equal(tk.detokenize(tk.tokenize(text), { cleanSpaces: false }), text, `${name}: ${JSON.stringify(text)}`);
  }
});

test("tokenPieceBytes resolves byte tokens, SentencePiece spaces and the GPT-2 byte mapping", () => {
  const spm = tokenizer("llama-spm");
  assert.deepEqual([...spm.tokenPieceBytes(spm.tokenize("\n")[1])], [0x0a]); // "▁" then <0x0A>
  assert.equal(spm.tokenText(13), "<0x0A>");
  assert.deepEqual([...spm.tokenPieceBytes(13)], [0x0a]);
  assert.equal(Buffer.from(spm.tokenPieceBytes(spm.tokenize("Hello")[0])).toString(), " Hello");
  assert.equal(Buffer.from(spm.tokenPieceBytes(spm.bos)).toString(), "<s>");
  assert.equal(spm.tokenPieceBytes(spm.bos, false).length, 0);
  const gpt2 = tokenizer("gpt-2");
  const [hello] = gpt2.tokenize(" Hello");
  assert.equal(gpt2.tokenText(hello), "ĠHello");
  assert.equal(Buffer.from(gpt2.tokenPieceBytes(hello)).toString(), " Hello");
  const llama3 = tokenizer("llama-bpe");
  const emoji = llama3.tokenize("🦙"); // split over byte tokens: the pieces are the raw UTF-8 bytes
  assert.deepEqual(Buffer.concat(emoji.map((t) => llama3.tokenPieceBytes(t))), Buffer.from("🦙"));
});

// ---- streaming ----

function stream(tk: Tokenizer, ids: readonly number[], options = {}): string[] {
  const dec = new TokenTextDecoder(tk, options);
  const chunks = ids.map((id) => dec.push(id));
  chunks.push(dec.flush());
  return chunks;
}

test("the streaming decoder waits for whole characters split over byte-fallback tokens", () => {
  const tk = loadTokenizerFile(sharedFile("models", "stories260K.gguf"));
  const ids = tk.tokenize("🦙中");
  // "▁" (its space is the dropped prefix), then 4 + 3 byte tokens.
  assert.equal(ids.length, 8);
  assert.deepEqual(stream(tk, ids), ["", "", "", "", "🦙", "", "", "中", ""]);
  // An unfinished character at the end becomes one U+FFFD, as in detokenize.
  assert.deepEqual(stream(tk, ids.slice(0, 3)), ["", "", "", "\uFFFD"]);
  assert.equal(tk.detokenize(ids.slice(0, 3)), "\uFFFD");
  // After a removed BOS, llama.cpp keeps the space prefix; the stream does the same.
  const withBos = tk.tokenize("Hi 🦙", { addSpecial: true });
  assert.deepEqual(stream(tk, withBos, { removeSpecial: true }), ["", " H", "i", " ", "", "", "", "🦙", ""]);
  assert.equal(tk.detokenize(withBos, { removeSpecial: true }), " Hi 🦙");
});

test("the streaming decoder never emits a broken character and adds up to detokenize", () => {
  for (const name of TESTED) {
    const tk = tokenizer(name);
    for (const { text } of readVectors(name)) {
      const ids = tk.tokenize(text);
      const chunks = stream(tk, ids);
      for (const c of chunks) assert.ok(!c.includes("\uFFFD") && Buffer.from(c).toString() === c, `${name}: broken chunk ${JSON.stringify(c)} in ${JSON.stringify(text)}`);
      assert.equal(chunks.join(""), tk.detokenize(ids, { cleanSpaces: false }), `${name}: ${JSON.stringify(text)}`);
    }
  }
});

// ---- model facts ----

function loadTokenizerFile(path: string): Tokenizer {
  const f = openGguf(path);
  try {
    return loadTokenizer(f);
  } finally {
    f.close();
  }
}

test("stories260K: 'Once upon a time' with BOS gives llama.cpp's ids", () => {
  const tk = loadTokenizerFile(sharedFile("models", "stories260K.gguf"));
  assert.equal(tk.vocabSize, 512);
  assert.deepEqual(tk.tokenize("Once upon a time", { addSpecial: true }), [1, 403, 407, 261, 378]);
  assert.deepEqual(tk.tokenize("Once upon a time"), [403, 407, 261, 378]);
  assert.deepEqual([...tk.eogTokens], [2]);
});

test("special ids, add-BOS rules, end-of-generation sets and parsing of special texts", () => {
  const llama3 = tokenizer("llama-bpe");
  assert.equal(llama3.bos, 128000);
  assert.equal(llama3.tokenize("Hi", { addSpecial: true })[0], 128000); // llama-bpe adds BOS by default
  assert.ok(llama3.eogTokens.has(128001) && llama3.eogTokens.has(128009)); // <|end_of_text|>, <|eot_id|>
  assert.deepEqual(llama3.tokenize("<|eot_id|>Hi", { parseSpecial: true }), [128009, 13347]);
  assert.ok(!llama3.tokenize("<|eot_id|>Hi").includes(128009));
  assert.equal(llama3.detokenize([128000, 13347, 128009]), "Hi");
  assert.equal(llama3.detokenize([128000, 13347, 128009], { unparseSpecial: true }), "<|begin_of_text|>Hi<|eot_id|>");

  const qwen = tokenizer("qwen2");
  assert.deepEqual(qwen.tokenize("Hi", { addSpecial: true }), qwen.tokenize("Hi")); // no BOS for Qwen2
  assert.ok(qwen.eogTokens.has(151643) && qwen.eogTokens.has(151645)); // <|endoftext|>, <|im_end|>

  const spm = tokenizer("llama-spm");
  assert.deepEqual(spm.tokenize("</s>x", { parseSpecial: true }).slice(0, 1), [2]);
  // The space prefix is dropped from the first piece only; after a BOS it stays (llama.cpp's rule).
  assert.equal(spm.detokenize(spm.tokenize("Hello")), "Hello");
  assert.equal(spm.detokenize(spm.tokenize("Hello", { addSpecial: true })), " Hello");
  assert.equal(spm.detokenize(spm.tokenize("Hello", { addSpecial: true }), { removeSpecial: true }), " Hello");
  assert.throws(() => spm.detokenize([32000]), SpecdecError);
});

// ---- bad input ----

function withMeta(f: GgufFile, changes: Record<string, string | boolean | undefined>): GgufFile {
  const metadata = new Map(f.metadata);
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) metadata.delete(k);
    else metadata.set(k, typeof v === "boolean" ? { type: 7, value: v } : { type: 8, value: v });
  }
  return { ...f, metadata };
}

test("unknown tokenizer models and pre-tokenizers give one-line errors", () => {
  const f = openGguf(join(VOCAB_DIR, "ggml-vocab-gpt-2.gguf"));
  try {
    const err = (changes: Record<string, string | undefined>, re: RegExp) =>
      assert.throws(() => loadTokenizer(withMeta(f, changes)), (e: unknown) => e instanceof SpecdecError && re.test(e.message) && !e.message.includes("\n"));
    err({ "tokenizer.ggml.pre": "nonsense-pre" }, /pre-tokenizer 'nonsense-pre' \(tokenizer\.ggml\.pre\) is not supported/);
    err({ "tokenizer.ggml.model": "t5" }, /tokenizer model 't5' \(Unigram\) is not supported/);
    err({ "tokenizer.ggml.model": "mystery" }, /tokenizer model 'mystery' is not supported/);
    err({ "tokenizer.ggml.model": undefined }, /no tokenizer in this GGUF file/);
  } finally {
    f.close();
  }
});
