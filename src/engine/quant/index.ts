// The tensor types of the built-in engine: conversions, (de)quantization and dot-product kernels.
export { F16_TO_F32, f16ToF32, f32ToF16, bf16ToF32, f32ToBf16 } from "./f16.js";
export { BF16_TO_F32 } from "./floats.js";
export { SUPPORTED_TYPES, isSupportedType, rowByteLength, dequantizeRow, quantizeRow, dotRow, matVec, matMul } from "./kernels.js";
export { firstNonFinite } from "./finite.js";
