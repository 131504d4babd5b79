// Chat messages → prompt text: the model's own Jinja template (`tokenizer.chat_template` in its
// GGUF), a template file given at start, or, for models without one (the default story family),
// a plain transcript. Rendered by @huggingface/jinja; the template is parsed once, at start.

import { readFileSync } from "node:fs";
import { Template } from "@huggingface/jinja";
import { SpecdecError } from "../errors.js";
import { metaNumber, metaString, openGguf } from "../gguf/reader.js";
import type { Target } from "../targets/target.js";
import type { Token } from "../types.js";
import { ApiError } from "./apiError.js";

/**
 * One message as the template sees it: content parts joined into one string, OpenAI's
 * "developer" role passed as "system" (the role templates know).
 */
export interface ChatMessage {
  readonly role: "system" | "user" | "assistant";
  readonly content: string;
  readonly name?: string;
}

/**
 * The transcript used when the model has no template: "Role: content" lines, ending with the
 * cue "Assistant:" (no trailing space: byte-level BPE models start words with their space).
 * A story model has never seen a chat format; a transcript is plain prose it can continue.
 */
export const FALLBACK_CHAT_TEMPLATE =
  "{%- for message in messages -%}" +
  "{{ message.role | capitalize }}: {{ message.content }}{{ '\\n' }}" +
  "{%- endfor -%}" +
  "{%- if add_generation_prompt -%}Assistant:{%- endif -%}";

/** With the fallback, generation also stops where the model starts writing the user's next turn. */
export const FALLBACK_STOPS: readonly string[] = ["\nUser:"];

export interface ChatTemplate {
  /** Where the template came from. */
  readonly source: "model" | "file" | "fallback";
  /** Stop strings every chat request gets in addition to its own. */
  readonly stops: readonly string[];
  /** The prompt tokens of a conversation, ending with the assistant's cue. */
  tokenize(messages: readonly ChatMessage[]): Token[];
}

/**
 * The chat template for a loaded target: `templateFile` when given, else the model file's
 * `tokenizer.chat_template`, else the fallback transcript. A template that does not parse is an
 * error at start, not at the first request.
 */
export function loadChatTemplate(target: Target, modelPath: string, templateFile?: string): ChatTemplate {
  const f = openGguf(modelPath);
  let own: string | undefined, bosId: number | undefined, eosId: number | undefined;
  try {
    own = metaString(f, "tokenizer.chat_template");
    bosId = metaNumber(f, "tokenizer.ggml.bos_token_id");
    eosId = metaNumber(f, "tokenizer.ggml.eos_token_id");
  } finally {
    f.close();
  }
  let text: string, source: ChatTemplate["source"];
  if (templateFile !== undefined) {
    try {
      text = readFileSync(templateFile, "utf8");
    } catch (e) {
      throw new SpecdecError(`cannot read chat template ${templateFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    source = "file";
  } else if (own !== undefined && own.trim() !== "") {
    text = own;
    source = "model";
  } else {
    text = FALLBACK_CHAT_TEMPLATE;
    source = "fallback";
  }
  let template: Template;
  try {
    template = new Template(text);
  } catch (e) {
    throw new SpecdecError(`the chat template (${source === "file" ? templateFile : "tokenizer.chat_template of " + modelPath}) does not parse: ${(e as Error).message}`);
  }
  const tokenText = (id: number | undefined) => (id !== undefined && id >= 0 && id < target.vocab.tokens.length ? target.vocab.tokens[id] : "");
  const bosToken = tokenText(bosId);
  const eosToken = tokenText(eosId);
  // Whether the model's own rule adds BOS: a template that writes bos_token itself must not
  // get a second one.
  const addsBos = target.tokenize("").length > 0;
  // A model's template writes its control tokens as text: they must become tokens again. The
  // fallback writes none, so a user's text that looks like one stays text.
  const parseSpecial = source !== "fallback";

  return {
    source,
    stops: source === "fallback" ? FALLBACK_STOPS : [],
    tokenize(messages) {
      let prompt: string;
      try {
        prompt = template.render({ messages, add_generation_prompt: true, bos_token: bosToken, eos_token: eosToken });
      } catch (e) {
        // Templates reject conversations they do not support (raise_exception): the request's fault.
        throw new ApiError(400, `the chat template rejected the messages: ${(e as Error).message}`, { param: "messages" });
      }
      if (addsBos && bosToken !== "" && prompt.startsWith(bosToken)) prompt = prompt.slice(bosToken.length);
      return target.tokenize(prompt, undefined, parseSpecial);
    },
  };
}
