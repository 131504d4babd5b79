// A schema validation failure (ajv, through fastify) as one 400 error naming the field:
// `param` in OpenAI's dotted form ("messages[0].role", "speculative.n_max").

import type { FastifySchemaValidationError } from "fastify";
import { ApiError } from "./apiError.js";

/** "/messages/0/role" → "messages[0].role". */
function paramOf(instancePath: string): string {
  return instancePath
    .split("/")
    .slice(1)
    .map((part) => part.replaceAll("~1", "/").replaceAll("~0", "~"))
    .reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : path ? `${path}.${part}` : part), "");
}

export function schemaError(errors: readonly FastifySchemaValidationError[]): ApiError {
  // For a field with several allowed shapes ajv reports each branch's failure, then the anyOf:
  // the anyOf's own description says what the field may be.
  const e = errors.find((x) => x.keyword === "anyOf") ?? errors[0];
  const param = paramOf(e.instancePath);
  const params = e.params as Record<string, unknown>;
  const where = param || "the request body";
  let message: string;
  switch (e.keyword) {
    case "additionalProperties": {
      const field = param ? `${param}.${String(params.additionalProperty)}` : String(params.additionalProperty);
      return new ApiError(400, `unknown field ${field}`, { param: field, code: "unknown_field" });
    }
    case "required": {
      const field = param ? `${param}.${String(params.missingProperty)}` : String(params.missingProperty);
      return new ApiError(400, `missing field ${field}`, { param: field });
    }
    case "anyOf": {
      const description = (e as { parentSchema?: { description?: string } }).parentSchema?.description;
      message = `${where} must be ${description ?? "of another type"}`;
      break;
    }
    case "type": {
      const types = String(params.type).split(",").filter((t) => t !== "null");
      const article = (t: string) => (/^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`);
      message = `${where} must be ${types.map((t) => (t === "object" ? "a JSON object" : article(t))).join(" or ")}`;
      break;
    }
    case "enum":
      message = `${where} must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`;
      break;
    default:
      message = `${where} ${e.message ?? "is invalid"}`;
  }
  return new ApiError(400, message, { param: param || null });
}
