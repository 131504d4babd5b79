// The hash that ties checkpoints to their data, options and target, and names a corpus file.
import { createHash } from "node:crypto";

/** Hex SHA-256 of a string (UTF-8) or of bytes. */
export function sha256(s: string | Uint8Array): string {
  return createHash("sha256").update(s).digest("hex");
}
