/**
 * Waiting for a time to live to run out, without racing it.
 *
 * The native cache measures TTLs on CLOCK_MONOTONIC; `performance.now()` is
 * monotonic too. A test notes the time just after a `set` returns, then waits
 * until the clock has passed that time plus the TTL: by then the entry's own
 * deadline (taken inside the `set`, earlier) has passed as well, however
 * slowly the machine runs, so the entry must read as expired. The opposite
 * check (still there before its TTL) would race a slow machine, so tests make
 * it only with TTLs far longer than any stall.
 */

/** Margin for the two clocks' rounding (milliseconds). */
const ROUNDING_MS = 2;

/** Resolves once `performance.now()` has passed `startMs + ms` (plus the rounding margin). */
export async function pastDeadline(startMs: number, ms: number): Promise<void> {
  const deadline = startMs + ms + ROUNDING_MS;
  for (;;) {
    const left = deadline - performance.now();
    if (left <= 0) return;
    await new Promise((resolve) => setTimeout(resolve, Math.ceil(left)));
  }
}
