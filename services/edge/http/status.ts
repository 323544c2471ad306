// The HTTP status lines the edge answers with (no bare numbers elsewhere).
export const HTTP_STATUS = {
  OK: "200 OK",
  BAD_REQUEST: "400 Bad Request",
  FORBIDDEN: "403 Forbidden",
  NOT_FOUND: "404 Not Found",
  TOO_MANY_REQUESTS: "429 Too Many Requests",
  INTERNAL_SERVER_ERROR: "500 Internal Server Error",
  SERVICE_UNAVAILABLE: "503 Service Unavailable",
} as const;

export type HttpStatus = (typeof HTTP_STATUS)[keyof typeof HTTP_STATUS];
