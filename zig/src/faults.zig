//! Fault points for the crash tests, compiled only into the test build of
//! the library (zig/src/test_exports.zig is its root, `zig test` runs the
//! unit tests with them) and into nothing we ship: in the release library
//! `enabled` is false, `at` is empty and there is no entry point to set a
//! step. A test sets the step (shmc_test_fault, process-wide), and the
//! next writer of the process that reaches that point parks there forever,
//! holding the lock with seq odd, so the test can SIGKILL it there.

const std = @import("std");
const builtin = @import("builtin");
const sys = @import("sys.zig");

/// True in the test build (its root declares `shm_cache_test_build`) and
/// under `zig test`.
pub const enabled = builtin.is_test or @hasDecl(@import("root"), "shm_cache_test_build");

/// Numbered points inside the mutations (tests/robust_test.ts STEPS).
pub const Fault = enum(u32) {
    none = 0,
    insert_after_free_mark = 1,
    insert_after_fields = 2,
    insert_after_commit = 3,
    insert_after_link = 4,
    remove_after_commit = 5,
    remove_after_unlink_table = 6,
    evict_after_choose = 7,
    clear_after_commit = 8,
    overwrite_after_free_mark = 9,
    lock_held_even = 10,
};

/// With `stop` (0x100) or'ed into the step, the writer instead stops
/// itself with SIGSTOP at that point and carries on when continued.
pub const stop: u32 = 0x100;

/// The step the test asked for (0 = none). Process-wide: the test's child
/// holds one cache. Monotonic: set before the operation it concerns, on
/// the same thread.
var step: u32 = 0;

pub fn set(s: u32) void {
    comptime std.debug.assert(enabled);
    @atomicStore(u32, &step, s, .monotonic);
}

/// Parks (or stops) the caller at `point` if the test asked for it.
pub inline fn at(point: Fault) void {
    if (comptime !enabled) return;
    park_if(point);
}

fn park_if(point: Fault) void {
    const s = @atomicLoad(u32, &step, .monotonic);
    if (s & ~stop != @backingInt(point)) return;
    if (s & stop != 0) {
        sys.stop_self();
        return;
    }
    // Park until killed: the test's SIGKILL arrives while we sleep here.
    while (true) sys.sleep_ns(std.time.ns_per_ms);
}
