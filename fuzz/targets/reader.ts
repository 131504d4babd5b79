// Target "reader": open a mutated GGUF file with specdec's reader and walk everything it
// returns: every metadata value (nested arrays included) and every tensor's data.

import type { CaseVerdict } from "../outcome.js";
import { openGguf, type GgufValue } from "../specdec.js";
import { mutantCase } from "./mutantCase.js";
import type { FuzzTarget } from "./target.js";

function touch(v: GgufValue): number {
  if (typeof v === "object") {
    let n = 0;
    for (const item of v.items) n += touch(item);
    return n;
  }
  return 1;
}

export const readerTarget: FuzzTarget = {
  name: "reader",
  timeLimitMs: 10_000,
  build(seed, index) {
    const { base } = mutantCase("reader", seed, index, "all", { nonFinite: 1 });
    return { ...base, params: {} };
  },
  async run(_c, file): Promise<CaseVerdict> {
    const f = openGguf(file!);
    try {
      let values = 0;
      for (const e of f.metadata.values()) values += touch(e.value);
      for (const t of f.tensors) {
        // What the reader promises of an accepted file: every tensor's data inside it.
        if (t.offset < f.dataOffset || t.offset + t.byteLength > f.fileSize) return { outcome: "wrong", detail: `tensor data ${t.offset}..${t.offset + t.byteLength} outside the ${f.fileSize}-byte file` };
        const data = f.readTensorData(t);
        if (data.length !== t.byteLength) return { outcome: "wrong", detail: `read ${data.length} bytes of a ${t.byteLength}-byte tensor` };
      }
      return { outcome: "parsed", detail: `${f.metadata.size} keys, ${values} values, ${f.tensors.length} tensors` };
    } finally {
      f.close();
    }
  },
};
