export * from "./llamaCppTarget.js";
export * from "./library.js";
export * from "./packages.js";
export * from "./validate.js";
