// Errors as the OpenAI API reports them: an HTTP status and
// {"error": {"message", "type", "param", "code"}}.

import type { ServerResponse } from "node:http";

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
