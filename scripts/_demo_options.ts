/**
 * The demo cache's options, shared by scripts/demo.ts and its worker
 * processes: every process must open the cache with the same geometry.
 * The long lock timeout lets writers wait (bounded) while the victim holds
 * the lock and take it over the moment its owner is dead.
 */
export function demoOptions(dir: string) {
  return { capacity: 1000, maxKeyBytes: 32, maxValueBytes: 64, dir, lockTimeoutMs: 10_000 };
}
