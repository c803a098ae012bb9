//! The root of the test build of the library (zig-out/test/libshm_cache.so,
//! which scripts/test.sh hands to the test suites through SHM_CACHE_LIB):
//! the whole C ABI of exports.zig, the fault points of faults.zig switched
//! on, and the one test entry point. The release library is built from
//! exports.zig alone and holds none of this.

const faults = @import("faults.zig");

/// Read by faults.zig: this build has its fault points.
pub const shm_cache_test_build = true;

comptime {
    _ = @import("exports.zig");
}

/// Parks the next writer of this process at a numbered step (faults.Fault,
/// or'ed with faults.stop to SIGSTOP instead). Process-wide.
export fn shmc_test_fault(step: u32) void {
    faults.set(step);
}
