/**
 * The one place that turns a native status into an exception.
 *
 * @module
 */

/** The `code` of a {@linkcode CacheError}. */
export type CacheErrorCode =
  | "InvalidArgument"
  | "TooLarge"
  | "LockTimeout"
  | "LockHeld"
  | "Corrupt"
  | "Mismatch"
  | "UnsafeDirectory"
  | "Io"
  | "NoSpace"
  | "TooManyHandles"
  | "NotLocked"
  | "OutOfMemory"
  | "Forked"
  | "Full"
  | "Closed"
  | "NotFound"
  | "Retired"
  | "LibraryNotFound"
  /** TieredCache: a call ran past `hardTimeoutMs`, or an L2 command past its timeout. */
  | "Timeout"
  /** TieredCache: Redis failed, timed out, or its circuit breaker is open (thrown only with `suppressL2Errors: false`). */
  | "L2Unavailable";

/**
 * An error raised by shm-cache with a machine-readable `code`.
 *
 * @example
 * ```ts
 * import { CacheError, SharedCache } from "../mod.ts";
 * try {
 *   SharedCache.open("sessions", { capacity: 10, maxKeyBytes: 64, maxValueBytes: 64 });
 * } catch (e) {
 *   if (e instanceof CacheError && e.code === "Mismatch") console.error(e.message);
 * }
 * ```
 */
export class CacheError extends Error {
  /** What went wrong, stable across releases. */
  readonly code: CacheErrorCode;

  /** Creates an error with a code and a message that names the value. */
  constructor(code: CacheErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CacheError";
    this.code = code;
  }
}

/** Native status codes, in step with `zig/src/status.zig`. */
export const Status = {
  ok: 0,
  miss: 1,
  invalidArgument: 2,
  tooLarge: 3,
  lockTimeout: 4,
  lockHeld: 5,
  corrupt: 6,
  mismatch: 7,
  unsafeDir: 8,
  io: 9,
  noSpace: 10,
  tooManyHandles: 11,
  notLocked: 12,
  outOfMemory: 13,
  forked: 14,
  full: 15,
  notFound: 16,
  retired: 17,
} as const;

const CODES: readonly CacheErrorCode[] = [
  "InvalidArgument", // 0 (ok) is never thrown
  "InvalidArgument", // 1 (miss) is never thrown
  "InvalidArgument",
  "TooLarge",
  "LockTimeout",
  "LockHeld",
  "Corrupt",
  "Mismatch",
  "UnsafeDirectory",
  "Io",
  "NoSpace",
  "TooManyHandles",
  "NotLocked",
  "OutOfMemory",
  "Forked",
  "Full",
  "NotFound",
  "Retired",
];

/** Builds the exception for a non-ok native status (positive code). */
export function errorForStatus(status: number, message: string): Error {
  if (status === Status.invalidArgument) return new RangeError(message);
  const code = CODES[status] ?? "Io";
  return new CacheError(code, message);
}
