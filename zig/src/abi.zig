//! The numbers both sides of the C ABI must agree on, defined once here (the
//! TypeScript side defines each once too, in lib/ffi/symbols.ts CONSTANTS).
//! `shmc_constants` hands them over in `constants` order, and the loader
//! compares every one before the library is used, as it does the version:
//! a library and a module that disagree on a vector's length or a mode's
//! number refuse to load instead of misreading each other's buffers.

const std = @import("std");
const Status = @import("status.zig").Status;
const counters = @import("counters.zig");

/// Bumped with any change of an exported signature or of a number below.
pub const version: u32 = 12;

/// shmc_open's config vector: capacity, key_bytes_max, value_bytes_max,
/// ttl_ms, lock_timeout_ms, codec, on_mismatch (f64 each).
pub const config_len: u32 = 7;

/// The meta vector bound by shmc_bind (u32 each; shmc_get and shmc_scan
/// fill it).
pub const meta_len: u32 = 8;

/// u32 per decode-memo entry: slot, value length, stamp low and high,
/// checksum low and high (read.Hit.memo).
pub const memo_stride: u32 = 6;

/// shmc_insert / shmc_put modes (write.Mode).
pub const insert_set: u32 = 0;
pub const insert_add: u32 = 1;
pub const insert_update: u32 = 2;

/// The f64 vector of shmc_stats: the per-handle counters, the shared ones
/// (6), then size, capacity, lock owner pid, seq.
pub const stats_len: u32 = counters.fields_len + 6 + 4;

/// The f64 vector of shmc_inspect: the stats vector, then 8 more.
pub const inspect_len: u32 = stats_len + 8;

/// How many statuses there are (status.zig), so the table that turns each
/// into an exception (lib/errors.ts) has one entry per status.
pub const status_count: u32 = @typeInfo(Status).@"enum".field_names.len;

/// The order shmc_constants writes them in (and CONSTANTS lists them in).
pub const constants = [_]u32{
    version,
    config_len,
    meta_len,
    memo_stride,
    insert_set,
    insert_add,
    insert_update,
    stats_len,
    inspect_len,
    status_count,
};

comptime {
    std.debug.assert(stats_len == 17);
    std.debug.assert(status_count == 18);
}
