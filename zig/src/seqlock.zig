//! The seqlock that lets readers run without any lock or shared write.
//!
//! Protocol. `Header.seq` is even when the structure is consistent and odd
//! while a writer (who must hold the writer lock) mutates it.
//! - Writer: store seq+1 (odd), then a Release fence so that none of the
//!   following data stores becomes visible before the odd value; mutate;
//!   store seq+2 with Release so every data store is visible before the even
//!   value. Only the lock holder writes seq, so it reads seq with a plain
//!   load.
//! - Reader: load seq with Acquire until it is even (s1); read and copy,
//!   checking every index and length it reads against the geometry since it
//!   may be reading a concurrent writer's half-made state; an Acquire fence
//!   so the copies complete before the second load; load seq (s2); the copy
//!   is valid iff s1 == s2.
//!
//! A torn read therefore costs a retry, never a wrong answer. A writer that
//! dies with seq odd leaves readers waiting; they detect the death through
//! the lock word (lock.zig) and recover, within their bound.
//!
//! Zig has no standalone fence builtin, so the two fences are written per
//! architecture: x86-64 is TSO (loads are not reordered with loads, nor
//! stores with stores), so both are compiler barriers; AArch64 needs real
//! barriers.

const std = @import("std");
const builtin = @import("builtin");
const assert = std.debug.assert;
const region = @import("region.zig");

/// Orders every earlier load before every later load and store.
pub inline fn fence_acquire() void {
    switch (builtin.cpu.arch) {
        .x86_64 => asm volatile ("" ::: .{ .memory = true }),
        .aarch64 => asm volatile ("dmb ishld" ::: .{ .memory = true }),
        else => @compileError("unsupported architecture"),
    }
}

/// Orders every earlier load and store before every later store.
pub inline fn fence_release() void {
    switch (builtin.cpu.arch) {
        .x86_64 => asm volatile ("" ::: .{ .memory = true }),
        .aarch64 => asm volatile ("dmb ish" ::: .{ .memory = true }),
        else => @compileError("unsupported architecture"),
    }
}

/// The reader's first load. Acquire: the data reads that follow cannot be
/// performed before it, so they see at least the state published with s.
pub inline fn load_acquire(header: *const region.Header) u64 {
    return @atomicLoad(u64, &header.seq, .acquire);
}

/// True iff nothing was written since `s1` was loaded (and s1 was even).
pub inline fn validate(header: *const region.Header, s1: u64) bool {
    // The fence keeps the reader's data loads before this load of seq.
    fence_acquire();
    // Monotonic suffices after the fence.
    const s2 = @atomicLoad(u64, &header.seq, .monotonic);
    return s1 == s2 and s1 & 1 == 0;
}

pub inline fn is_odd(header: *const region.Header) bool {
    // Monotonic: a hint for waiters; correctness comes from validate().
    return @atomicLoad(u64, &header.seq, .monotonic) & 1 == 1;
}

/// Caller holds the writer lock and seq is even.
pub inline fn write_begin(header: *region.Header) void {
    // Plain read is enough: only the lock holder writes seq, and it acquired
    // the lock with Acquire ordering.
    const s = @atomicLoad(u64, &header.seq, .monotonic);
    assert(s & 1 == 0);
    // Monotonic store, then a Release fence: later data stores cannot be
    // seen before the odd value (a reader that saw new data also sees odd).
    @atomicStore(u64, &header.seq, s +% 1, .monotonic);
    fence_release();
}

/// Caller holds the writer lock and seq is odd.
pub inline fn write_end(header: *region.Header) void {
    const s = @atomicLoad(u64, &header.seq, .monotonic);
    assert(s & 1 == 1);
    // Release: every data store of the mutation is visible before even.
    @atomicStore(u64, &header.seq, s +% 1, .release);
}
