// llama.cpp's batched and one-token passes may round differently; a flip of the argmax is only
// acceptable where the two best tokens were this close (probability difference). The library's
// own definitions (src/compare.ts), which bench and demo also use.
export { NEAR_TIE, NEAR_TIE_ROUNDED, nearTieBound, top2GapAt } from "../../src/compare.js";
