//! One entry (a slot): the key hash, the checksum that proves a slot holds
//! one complete write, and the writer-side lookup of a key. Shared by the
//! reads, the writes, rebuild and verify.

const std = @import("std");
const assert = std.debug.assert;
const region = @import("region.zig");
const table = @import("table.zig");
const sieve = @import("sieve.zig");
const seqlock = @import("seqlock.zig");
const lock = @import("lock.zig");
const liveness = @import("liveness.zig");
const sys = @import("sys.zig");
const Handle = @import("handle.zig").Handle;
const counters = @import("counters.zig");
const abi = @import("abi.zig");
const faults = @import("faults.zig");

const hash_seed: u64 = 0x5348_4D43_6B65_7931;
const checksum_seed: u64 = 0x5348_4D43_7375_6D31;

pub fn key_hash(key: []const u8) u64 {
    return std.hash.Wyhash.hash(hash_seed, key);
}


// Numbered fault points (faults.at): parks in the test build of the
// library, nothing at all in the release build.


pub fn slot_checksum(h: *const Handle, index: u32, state: u8) u64 {
    const s = h.slot(index);
    // XxHash64, not Wyhash: Wyhash's multiply can zero its whole state when
    // an input lane equals one of its public constants, so a value holding
    // those 8 bytes could make the checksum blind to the bytes before it
    // (a torn write would pass). XxHash64's rounds multiply by odd
    // constants, which loses nothing.
    var hasher = std.hash.XxHash64.init(checksum_seed);
    const fields = [_]u64{
        s.hash,
        s.expires_ns,
        s.stamp,
        (@as(u64, s.key_len) << 32) | s.value_len,
        state,
    };
    hasher.update(std.mem.sliceAsBytes(&fields));
    const key_len = @min(s.key_len, h.geo.key_bytes_max);
    const value_len = @min(s.value_len, h.geo.value_bytes_max);
    hasher.update(h.slot_key(index)[0..key_len]);
    hasher.update(h.slot_value(index)[0..value_len]);
    return hasher.final();
}

/// Whether a slot holds a complete entry (writers and rebuild only).
pub fn slot_live(h: *const Handle, index: u32) bool {
    const s = h.slot(index);
    if (s.state != region.slot_occupied) return false;
    if (s.key_len > h.geo.key_bytes_max or s.value_len > h.geo.value_bytes_max) return false;
    return slot_checksum(h, index, region.slot_occupied) == s.checksum;
}

pub fn slot_key_eql(h: *const Handle, index: u32, key: []const u8) bool {
    return std.mem.eql(u8, h.slot_key(index)[0..key.len], key);
}

pub const Found = struct { slot: u32, bucket: u32 };

/// Writer-side lookup (no seqlock: the caller holds the lock).
pub fn find_key(h: *const Handle, hash: u64, key: []const u8) ?Found {
    const tag = region.hash_tag(hash);
    var p = table.Probe.init(h, tag);
    while (p.next()) |step| {
        const si = region.bucket_slot(step.bucket);
        if (region.bucket_tag(step.bucket) == tag and si < h.geo.capacity) {
            const s = h.slot(si);
            if (s.hash == hash and s.key_len == key.len and slot_key_eql(h, si, key)) {
                return .{ .slot = si, .bucket = step.index };
            }
        }
    }
    return null;
}

/// Whether an entry is live at `now` (writers only).
/// Whether an entry is live at `now` (writers only).
pub fn unexpired(s: *const region.Slot, now_ns: u64) bool {
    return s.expires_ns == 0 or now_ns < s.expires_ns;
}
