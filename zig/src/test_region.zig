//! Test support for the unit tests beside the primitives (seqlock, lock,
//! sieve, table, liveness): a region in process memory with a handle on it,
//! and a scratch file opened more than once, for the byte locks. Only test
//! blocks import this file, so none of it is in the library.

const std = @import("std");
const c = std.c;
const assert = std.debug.assert;
const region = @import("region.zig");
const sys = @import("sys.zig");
const Handle = @import("handle.zig").Handle;

const testing = std.testing;

/// A zeroed, initialised region in process memory. Its handle has no file
/// (fd -1): a liveness probe through it fails and answers "alive".
pub const Memory = struct {
    memory: []align(sys.page_size) u8,
    handle: Handle,

    pub fn init(capacity: u32) !*Memory {
        const geo = try region.geometry(capacity, 16, 16, 0);
        const m = try testing.allocator.create(Memory);
        errdefer testing.allocator.destroy(m);
        m.memory = try testing.allocator.alignedAlloc(u8, .fromByteUnits(sys.page_size), @intCast(geo.region_bytes));
        @memset(m.memory, 0);
        region.init_header(m.memory, geo, 0);
        m.handle = .{ .memory = m.memory, .geo = geo, .fd = -1, .live_slot = 1, .pid = 1, .lock_timeout_ns = std.time.ns_per_s, .line = region.counters_line(m.memory, geo, 1), .base = @splat(0) };
        return m;
    }

    /// Another handle on the same memory, as another process would have.
    pub fn other(m: *const Memory, live_slot: u32, fd: c.fd_t) Handle {
        var h = m.handle;
        h.live_slot = live_slot;
        h.line = region.counters_line(m.memory, m.handle.geo, live_slot);
        h.fd = fd;
        h.pid = live_slot;
        h.lock_held = false;
        h.lock_word = 0;
        return h;
    }

    pub fn deinit(m: *Memory) void {
        testing.allocator.free(m.memory);
        testing.allocator.destroy(m);
    }
};

/// A scratch file opened `fds.len` times: distinct open file descriptions,
/// so their OFD byte locks conflict as two processes' would. The file is
/// unlinked at once; the descriptors keep it.
pub fn scratch_fds(comptime n: usize) ![n]c.fd_t {
    var name_buf: [96]u8 = undefined;
    const name = try std.fmt.bufPrintSentinel(&name_buf, "/tmp/shmc-zig-unit-{d}-{d}", .{ sys.getpid(), sys.now_ns() }, 0);
    var fds: [n]c.fd_t = undefined;
    for (&fds, 0..) |*fd, i| {
        fd.* = try sys.openat(c.AT.FDCWD, name.ptr, .{ .create = i == 0 });
    }
    try sys.ftruncate(fds[0], sys.page_size);
    try sys.unlinkat(c.AT.FDCWD, name.ptr);
    return fds;
}
