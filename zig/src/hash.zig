//! Keyed hashing (issue 10, design10.md §7). A fixed public key hash lets
//! whoever chooses the keys crowd the table (keys crafted against Wyhash's
//! public constants all hash alike); here every region gets 32 random bytes
//! from the kernel at creation: 16 key SipHash-1-3 (a keyed PRF) for the
//! key hash, 16 seed the lanes of the value fold.
//!
//! `fold` is our own 8-lane multiply-accumulate over 64-byte blocks (the
//! XXH3 construction): per block x, m = x ^ lanes, acc += lo32(m) * hi32(m),
//! acc += swap_pairs(x). The multiply never feeds back into acc, so the
//! lanes run at vector throughput; `copy_fold` does the same while storing
//! every block to the destination, so a writer folds the caller's (hot)
//! buffer instead of reading the region back. Vectors are loaded through
//! `*align(1) const @Vector(8, u64)`: a `@bitCast` of a byte array compiles
//! to byte loads in Zig 0.17 (500x slower, measured).
//!
//! STATUS: written and unit-tested on branch i10s (issue 10 part B); not yet
//! used by the store.

const std = @import("std");
const assert = std.debug.assert;
const builtin = @import("builtin");

pub const Sip = std.crypto.auth.siphash.SipHash64(1, 3);

/// The per-region secrets (header line 1).
pub const Keys = extern struct {
    hash_key: [16]u8,
    sum_key: [16]u8,
};

/// 32 bytes from the kernel. Never derived from anything predictable: if
/// the kernel has no randomness to give, creating the region fails.
pub fn random_keys() error{NoRandomness}!Keys {
    var buf: [32]u8 = undefined;
    var got: usize = 0;
    var attempts: u32 = 0;
    // Bound: getrandom returns at least one byte or an error per call; at
    // most 64 interrupted calls are retried.
    while (got < buf.len) : (attempts += 1) {
        if (attempts > 64) return error.NoRandomness;
        if (comptime builtin.os.tag == .linux) {
            const rc = std.c.getrandom(buf[got..].ptr, buf.len - got, 0);
            if (rc > 0) {
                got += @intCast(rc);
                continue;
            }
            if (std.c._errno().* == @intFromEnum(std.c.E.INTR)) continue;
            return error.NoRandomness;
        } else {
            std.c.arc4random_buf(&buf, buf.len);
            got = buf.len;
        }
    }
    return .{ .hash_key = buf[0..16].*, .sum_key = buf[16..32].* };
}

pub fn key_hash(keys: *const Keys, key: []const u8) u64 {
    return Sip.toInt(key, &keys.hash_key);
}

pub const Lanes = @Vector(8, u64);

/// The fold's lanes for a region: SipHash of the lane number under sum_key.
pub fn lanes_of(keys: *const Keys) Lanes {
    var out: [8]u64 = undefined;
    for (&out, 0..) |*lane, i| {
        const n = [1]u8{@intCast(i)};
        lane.* = Sip.toInt(&n, &keys.sum_key) | 1;
    }
    return out;
}

const prime: u64 = 0x9E37_79B1_85EB_CA87;

inline fn load_block(p: [*]const u8) Lanes {
    return @as(*align(1) const Lanes, @ptrCast(p)).*;
}

inline fn accumulate(acc: *Lanes, x: Lanes, lanes: Lanes) void {
    const m = x ^ lanes;
    const lo = m & @as(Lanes, @splat(0xffff_ffff));
    const hi = m >> @splat(32);
    acc.* +%= lo *% hi;
    // swap_pairs: each lane also gets its neighbour's raw input, so a
    // block whose multiply happens to be 0 still changes acc.
    acc.* +%= @shuffle(u64, x, undefined, [8]i32{ 1, 0, 3, 2, 5, 4, 7, 6 });
}

inline fn scramble(acc: *Lanes) void {
    acc.* ^= acc.* >> @splat(47);
    acc.* *%= @as(Lanes, @splat(prime));
}

fn finish(acc: Lanes, len: usize) u64 {
    var h: u64 = @as(u64, len) *% prime;
    const a: [8]u64 = acc;
    for (a) |lane| {
        h ^= lane;
        h = std.math.rotl(u64, h, 27) *% prime +% 0x52DC_E729;
    }
    // 64-bit avalanche (murmur3's finaliser).
    h ^= h >> 33;
    h *%= 0xff51_afd7_ed55_8ccd;
    h ^= h >> 33;
    h *%= 0xc4ce_b9fe_1a85_ec53;
    h ^= h >> 33;
    return h;
}

/// The keyed fold of `src`; with `dst` (same length) also copies it there.
fn fold_impl(lanes: Lanes, dst: ?[*]u8, src: []const u8) u64 {
    var acc: Lanes = lanes;
    var i: usize = 0;
    var blocks: u32 = 0;
    // Bound: src.len / 64 iterations.
    while (i + 64 <= src.len) : (i += 64) {
        const x = load_block(src.ptr + i);
        if (dst) |d| @as(*align(1) Lanes, @ptrCast(d + i)).* = x;
        accumulate(&acc, x, lanes);
        blocks += 1;
        if (blocks % 16 == 0) scramble(&acc);
    }
    if (i < src.len) {
        var tail: [64]u8 align(64) = @splat(0);
        const rest = src.len - i;
        @memcpy(tail[0..rest], src[i..]);
        if (dst) |d| @memcpy(d[i..][0..rest], src[i..]);
        accumulate(&acc, load_block(&tail), lanes);
    }
    return finish(acc, src.len);
}

pub fn fold(lanes: Lanes, src: []const u8) u64 {
    return fold_impl(lanes, null, src);
}

/// Copies `src` to `dst` and returns fold(src) in one pass.
pub fn copy_fold(lanes: Lanes, dst: []u8, src: []const u8) u64 {
    assert(dst.len == src.len);
    return fold_impl(lanes, dst.ptr, src);
}

const testing = std.testing;

const test_keys: Keys = .{ .hash_key = @splat(7), .sum_key = @splat(9) };

test "SipHash-1-3 under the region key: deterministic per key, different across keys" {
    const other: Keys = .{ .hash_key = @splat(8), .sum_key = @splat(9) };
    try testing.expectEqual(key_hash(&test_keys, "k"), key_hash(&test_keys, "k"));
    try testing.expect(key_hash(&test_keys, "k") != key_hash(&other, "k"));
    try testing.expect(key_hash(&test_keys, "k") != key_hash(&test_keys, "l"));
}

test "fold: every length, copy_fold agrees and copies, misaligned, one flipped byte changes it" {
    const lanes = lanes_of(&test_keys);
    var src_buf: [16_400]u8 = undefined;
    var prng = std.Random.DefaultPrng.init(3);
    prng.random().bytes(&src_buf);
    var dst_buf: [16_400]u8 = undefined;
    const lens = [_]usize{ 0, 1, 7, 63, 64, 65, 127, 128, 200, 1024, 16_384, 16_391 };
    for (lens) |len| {
        for (0..8) |off| {
            if (off + len > src_buf.len) continue;
            const src = src_buf[off..][0..len];
            const f = fold(lanes, src);
            @memset(&dst_buf, 0);
            const g = copy_fold(lanes, dst_buf[(off + 3) % 8 ..][0..len], src);
            try testing.expectEqual(f, g);
            try testing.expectEqualSlices(u8, src, dst_buf[(off + 3) % 8 ..][0..len]);
            if (len == 0) continue;
            const at = prng.random().uintLessThan(usize, len);
            src_buf[off + at] ^= 0x10;
            try testing.expect(fold(lanes, src_buf[off..][0..len]) != f);
            src_buf[off + at] ^= 0x10;
        }
    }
    // The length counts: zero bytes of different lengths differ.
    const zeros: [128]u8 = @splat(0);
    try testing.expect(fold(lanes, zeros[0..64]) != fold(lanes, zeros[0..65]));
    // Keyed: other lanes, other fold.
    const other: Keys = .{ .hash_key = @splat(7), .sum_key = @splat(10) };
    try testing.expect(fold(lanes_of(&other), src_buf[0..100]) != fold(lanes, src_buf[0..100]));
}

test "random_keys: 32 bytes from the kernel, different each time" {
    const a = try random_keys();
    const b = try random_keys();
    try testing.expect(!std.mem.eql(u8, std.mem.asBytes(&a), std.mem.asBytes(&b)));
}
