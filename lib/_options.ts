/**
 * Strict option objects: an option name that no function reads is a typo
 * (`{ ttl: 5 }` for `{ ttlMs: 5 }`), and a typo silently ignored is a cache
 * without the TTL its author asked for. So every public function that takes
 * an options object rejects names it does not know, with a suggestion when
 * one is close.
 *
 * @module
 */

import { describe } from "./_describe.ts";

/**
 * Throws a `TypeError` unless `options` is `undefined` or an object whose
 * own enumerable names are all in `known`.
 *
 * @param options The options argument as the caller passed it.
 * @param known The option names the function reads.
 * @param where What the options belong to, for the message, e.g. "SharedCache.set options (the third argument)".
 * @throws {TypeError} If `options` is not an object, or has an unknown name; the message names
 *   `where` and the name, and suggests a close known name ("did you mean `ttlMs`?").
 *
 * @example
 * ```ts
 * import { checkOptionNames } from "./_options.ts";
 *
 * checkOptionNames({ ttlMs: 5 }, ["ttlMs"], "set options"); // fine
 * checkOptionNames({ ttl: 5 }, ["ttlMs"], "set options"); // TypeError: ... did you mean `ttlMs`?
 * ```
 */
export function checkOptionNames(options: unknown, known: readonly string[], where: string): void {
  if (options === undefined) return;
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    const example = known.includes("ttlMs") ? " such as { ttlMs: 5000 }" : "";
    throw new TypeError(`${where} must be an object${example}, got ${describe(options)}`);
  }
  // for-in without allocation: the common case, one or two known names.
  for (const name in options) {
    if (!known.includes(name)) throw unknownOption(name, known, where);
  }
}

function unknownOption(name: string, known: readonly string[], where: string): TypeError {
  const close = closest(name, known);
  const hint = close === undefined ? "" : `; did you mean \`${close}\`?`;
  return new TypeError(
    `${where}: unknown option ${JSON.stringify(name)}${hint} (known options: ${known.join(", ")})`,
  );
}

/** The known name nearest to `name`, if it is near enough to be what was meant. */
function closest(name: string, known: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const other = candidate.toLowerCase();
    // A prefix or a case slip ("ttl", "TTLms") counts as one edit.
    const distance = other.startsWith(lower) || lower.startsWith(other)
      ? 1
      : editDistance(lower, other);
    if (distance < bestDistance) {
      bestDistance = distance;
      best = candidate;
    }
  }
  // Up to a third of the name may differ: "ttlMS", "capcity", "maxKeyByte".
  return bestDistance <= Math.max(1, Math.floor(name.length / 3)) ? best : undefined;
}

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    rows.push([i]);
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        rows[0][j] = j;
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, rows[i - 2][j - 2] + 1);
      }
      rows[i][j] = d;
    }
  }
  return rows[a.length][b.length];
}
