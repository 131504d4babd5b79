// The server's public API (`import ... from "specdec/server"`: kept out of the main entry point,
// whose users need no HTTP framework loaded).
export * from "./server.js";
export * from "./options.js";
export * from "./apiError.js";
export * from "./chatTemplate.js";
export * from "./malformed.js";
export * from "./metrics.js";
export * from "./requests.js";
export * from "./responses.js";
export * from "./slots.js";
export * from "./generation.js";
export * from "./respond.js";
