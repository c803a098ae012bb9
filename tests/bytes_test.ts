import assert from "node:assert/strict";
import { parseBytes } from "../lib/_bytes.ts";
import { test } from "./_harness.ts";

const MIB = 1 << 20;

test("parseBytes: numbers and strings with binary units, fractions floored", () => {
  assert.equal(parseBytes("maxBytes", 64 * MIB, MIB, 2 ** 38), 64 * MIB);
  assert.equal(parseBytes("maxBytes", "64mb", MIB, 2 ** 38), 64 * MIB);
  assert.equal(parseBytes("maxBytes", " 1.5 MiB ", MIB, 2 ** 38), 1.5 * MIB);
  assert.equal(parseBytes("maxBytes", "512k", 1, 2 ** 38), 512 * 1024);
  assert.equal(parseBytes("maxBytes", "2G", MIB, 2 ** 38), 2 * 1024 * MIB);
  assert.equal(parseBytes("maxBytes", "1048576.9", MIB, 2 ** 38), MIB);
  assert.equal(parseBytes("maxBytes", 1048576.9, MIB, 2 ** 38), MIB);
});

test("parseBytes: bad strings and out-of-range sizes name the option, the limit and the value", () => {
  for (const bad of ["", "mb", "64 tb", "-1mb", "1e6", "64 m b", "0x10"]) {
    assert.throws(
      () => parseBytes("maxBytes", bad, MIB, 2 ** 38),
      (e: unknown) =>
        e instanceof RangeError && e.message.startsWith("maxBytes must be a number of bytes") &&
        e.message.includes(JSON.stringify(bad)),
    );
  }
  assert.throws(
    () => parseBytes("maxBytes", "512k", MIB, 2 ** 38),
    (e: unknown) =>
      e instanceof RangeError &&
      e.message === `maxBytes must be between ${MIB} and ${2 ** 38} bytes, got 524288 ("512k")`,
  );
  assert.throws(() => parseBytes("maxBytes", Number.NaN, MIB, 2 ** 38), RangeError);
  assert.throws(() => parseBytes("maxBytes", {}, MIB, 2 ** 38), TypeError);
});
