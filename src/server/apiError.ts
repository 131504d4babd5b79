// Errors as the OpenAI API reports them: an HTTP status and
// {"error": {"message", "type", "param", "code"}}.

import type { ServerResponse } from "node:http";
import { SpecdecError } from "../errors.js";

export type ApiErrorType = "invalid_request_error" | "authentication_error" | "not_found_error" | "server_error" | "overloaded_error" | "timeout_error";

export interface ApiErrorBody {
  error: { message: string; type: ApiErrorType; param: string | null; code: string | null };
}

export class ApiError extends Error {
  override readonly name = "ApiError";
  readonly type: ApiErrorType;
  readonly param: string | null;
  /** OpenAI's `code` (named so because frameworks set a `code` of their own on errors they pass on). */
  readonly errorCode: string | null;
  /** Extra response headers (Retry-After). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    readonly status: number,
    message: string,
    o: { type?: ApiErrorType; param?: string | null; code?: string | null; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.type = o.type ?? defaultType(status);
    this.param = o.param ?? null;
    this.errorCode = o.code ?? null;
    this.headers = o.headers ?? {};
  }

  body(): ApiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.errorCode } };
  }
}

function defaultType(status: number): ApiErrorType {
  if (status === 401) return "authentication_error";
  if (status === 404) return "not_found_error";
  if (status === 503) return "overloaded_error";
  if (status === 504) return "timeout_error";
  return status < 500 ? "invalid_request_error" : "server_error";
}

/** Write an error as a whole JSON response on a raw response (one whose headers are not sent yet). */
export function writeApiError(res: ServerResponse, e: ApiError): void {
  if (res.headersSent || res.destroyed) return;
  const body = JSON.stringify(e.body());
  res.writeHead(e.status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body), ...e.headers });
  res.end(body);
}

/** Any error as the API reports it: ours as they are, the framework's (fastify's codes) with their status, anything else a 500. */
export function toApiError(err: unknown, bodyLimit: number): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof SpecdecError) return new ApiError(400, err.message);
  const e = err as { code?: unknown; statusCode?: unknown; message?: unknown } | undefined;
  switch (e?.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new ApiError(413, `the request body is larger than the server's limit of ${bodyLimit} bytes`, { code: "body_too_large" });
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new ApiError(415, "the request body must be JSON (Content-Type: application/json)", { code: "unsupported_media_type" });
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return new ApiError(400, "the Content-Length header does not match the body");
  }
  const status = typeof e?.statusCode === "number" ? e.statusCode : 500;
  const message = String(e?.message ?? err).split("\n")[0];
  if (status >= 400 && status < 500) return new ApiError(status, message);
  return new ApiError(500, `internal error: ${message}`);
}
