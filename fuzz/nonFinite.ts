// Does a GGUF file hold a NaN or an infinity in a weight the built-in engine would read? Used to
// tell the failures of non-finite weights (open elsewhere: issue 15 item 1) from other ones,
// whatever made the weights non-finite: a value written into the data, a shifted data section,
// or a tensor retyped so its bytes decode differently (F32 read as F16 holds NaN patterns).

import { dequantizeRow, isSupportedType, openGguf } from "./specdec.js";

export function hasNonFiniteWeights(path: string): boolean {
  let f;
  try {
    f = openGguf(path);
  } catch {
    return false; // refused by the reader: no weights at all
  }
  try {
    for (const t of f.tensors) {
      if (!isSupportedType(t.type) || t.elementCount === 0) continue;
      const data = f.readTensorData(t);
      const row = t.dims[0];
      const out = new Float32Array(row);
      const rowBytes = t.byteLength / (t.elementCount / row);
      for (let off = 0; off < t.byteLength; off += rowBytes) {
        dequantizeRow(t.type, data, off, out, row);
        for (let i = 0; i < row; i++) if (!Number.isFinite(out[i])) return true;
      }
    }
    return false;
  } finally {
    f.close();
  }
}
