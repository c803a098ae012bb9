//! Opening a cache: the per-user directory, the lock and data files, and the
//! open-or-create protocol.
//!
//! - The directory is created 0700 if missing and refused when it is a
//!   symlink, owned by another user, or group/other accessible: cached
//!   values are decoded by every process, so a foreign writer is an attack.
//!   Files are opened relative to the directory's descriptor (no path race
//!   after the check), never through a symlink, and created 0600.
//! - One file per cache, `<name>.shmc`: the region, and also the creation
//!   lock (byte 0) and the liveness byte locks (liveness.zig). With a single
//!   inode there is no pair of files that a `destroy` (or a tmp cleaner)
//!   could split between processes.
//! - Open-or-create is serialized by the creation lock, taken with a bounded
//!   wait (and, within a process, by a mutex); `destroy` unlinks under the
//!   same lock, and an opener that finds its file unlinked once it holds the
//!   lock retries on the new one. Under the lock, a file of size 0, or one whose
//!   `initialized` marker is missing (a creator died mid-way), is (re)built,
//!   but only when no liveness byte is held: every process that maps the
//!   region holds one, so nobody maps a file that is rebuilt. A marker lost
//!   to corruption while handles are open is reported, never rebuilt.
//! - An initialized region is never truncated or rebuilt here: a mismatch
//!   with the requested geometry or TTL is an error naming the field. A
//!   field the caller leaves out is taken from the region (attach); only a
//!   caller who gives the whole geometry may create a region.
//! - `inspect` reads a cache without becoming one of its handles (see there).

const std = @import("std");
const assert = std.debug.assert;
const c = std.c;
const region = @import("region.zig");
const liveness = @import("liveness.zig");
const lock = @import("lock.zig");
const sys = @import("sys.zig");
const Status = @import("status.zig").Status;
const Handle = @import("handle.zig").Handle;
const threads = @import("threads.zig");
const seqlock = @import("seqlock.zig");
const write = @import("write.zig");
const rebuilding = @import("rebuild.zig");
const counters = @import("counters.zig");
const watch = @import("watch.zig");

pub const name_bytes_max = 128;
const path_bytes_max = 4096;

/// Why an open failed: a status and a message for the caller's buffer.
pub const Message = struct {
    buf: []u8,
    len: usize = 0,
    status: Status = .ok,

    pub fn fail(m: *Message, status: Status, comptime fmt: []const u8, args: anytype) error{Fail} {
        m.status = status;
        const line = std.fmt.bufPrint(m.buf, fmt, args) catch {
            m.len = m.buf.len;
            return error.Fail;
        };
        m.len = line.len;
        return error.Fail;
    }
};

/// What the caller asks for. A null field was not given: an existing
/// region's value is used (no Mismatch possible), and without capacity and
/// both byte limits a missing region cannot be created (not_found).
pub const Options = struct {
    capacity: ?u64,
    key_bytes_max: ?u64,
    value_bytes_max: ?u64,
    /// null when creating = no expiry.
    ttl_ms: ?u64,
    lock_timeout_ms: u64,
    /// An index of region.codec_names; null when creating = json.
    codec: ?u64,
    /// onMismatch "replace": an existing region that does not match
    /// (geometry, TTL, codec or format) is replaced by a new one (`replace`).
    replace: bool = false,
};

/// Letters, digits, '-', '_' and '.', not starting with '.', at most 128
/// bytes: a name is used as a file name only after this check.
pub fn name_valid(name: []const u8) bool {
    if (name.len == 0 or name.len > name_bytes_max) return false;
    if (name[0] == '.') return false;
    for (name) |ch| {
        const ok = std.ascii.isAlphanumeric(ch) or ch == '-' or ch == '_' or ch == '.';
        if (!ok) return false;
    }
    return true;
}

/// The directory path: the caller's, or the per-user default.
fn dir_path(dir: []const u8, buf: *[path_bytes_max]u8, m: *Message) error{Fail}![:0]const u8 {
    if (dir.len > 0) {
        if (dir.len >= buf.len or std.mem.indexOfScalar(u8, dir, 0) != null) {
            return m.fail(.invalid_argument, "dir is not a usable path ({d} bytes)", .{dir.len});
        }
        @memcpy(buf[0..dir.len], dir);
        buf[dir.len] = 0;
        return buf[0..dir.len :0];
    }
    const uid = sys.geteuid();
    var base: []const u8 = "/dev/shm";
    if (!sys.is_linux or c.access("/dev/shm", 2) != 0) {
        const tmp = c.getenv("TMPDIR");
        base = if (tmp) |t| std.mem.span(t) else "/tmp";
    }
    while (base.len > 1 and base[base.len - 1] == '/') base = base[0 .. base.len - 1];
    return std.fmt.bufPrintSentinel(buf, "{s}/shm-cache-{d}", .{ base, uid }, 0) catch
        m.fail(.invalid_argument, "the default directory path is too long", .{});
}

/// Creates (0700) or opens the directory and checks it is ours alone.
fn open_dir(path: [:0]const u8, make: bool, m: *Message) error{Fail}!c.fd_t {
    if (make) sys.mkdir(path.ptr) catch {
        return m.fail(.io, "cannot create directory {s}: errno {s}", .{ path, sys.last_name() });
    };
    const fd = sys.openat(c.AT.FDCWD, path.ptr, .{ .directory = true }) catch {
        if (!make and sys.last() == .NOENT) return m.fail(.not_found, "directory {s} does not exist", .{path});
        if (sys.last() == .LOOP or sys.last() == .NOTDIR) {
            return m.fail(.unsafe_dir, "unsafe directory {s}: it is a symbolic link or not a directory", .{path});
        }
        return m.fail(.io, "cannot open directory {s}: errno {s}", .{ path, sys.last_name() });
    };
    errdefer sys.close(fd);
    const st = sys.fstat(fd) catch {
        return m.fail(.io, "cannot stat directory {s}: errno {s}", .{ path, sys.last_name() });
    };
    try check_owner(path, st, m);
    return fd;
}

fn check_owner(path: []const u8, st: sys.Stat, m: *Message) error{Fail}!void {
    const uid = sys.geteuid();
    if (st.uid != uid) {
        return m.fail(.unsafe_dir, "unsafe {s}: owned by uid {d}, not by this user (uid {d})", .{ path, st.uid, uid });
    }
    if (st.mode & 0o077 != 0) {
        return m.fail(.unsafe_dir, "unsafe {s}: mode {o} gives group/other access (0700 directory and 0600 files required)", .{ path, st.mode & 0o777 });
    }
}

fn file_name(buf: *[name_bytes_max + 16]u8, name: []const u8, ext: []const u8) [:0]const u8 {
    assert(name.len <= name_bytes_max);
    return std.fmt.bufPrintSentinel(buf, "{s}{s}", .{ name, ext }, 0) catch unreachable;
}

fn open_file(dir_fd: c.fd_t, dir: []const u8, name: []const u8, ext: []const u8, flags: sys.OpenFlags, m: *Message) error{Fail}!c.fd_t {
    var buf: [name_bytes_max + 16]u8 = undefined;
    const file = file_name(&buf, name, ext);
    const fd = sys.openat(dir_fd, file.ptr, flags) catch {
        if (!flags.create and sys.last() == .NOENT) return m.fail(.not_found, "{s}/{s} does not exist", .{ dir, file });
        if (sys.last() == .LOOP) return m.fail(.unsafe_dir, "unsafe {s}/{s}: it is a symbolic link", .{ dir, file });
        return m.fail(.io, "cannot open {s}/{s}: errno {s}", .{ dir, file, sys.last_name() });
    };
    errdefer liveness.close_fd(fd);
    const st = sys.fstat(fd) catch {
        return m.fail(.io, "cannot stat {s}/{s}: errno {s}", .{ dir, file, sys.last_name() });
    };
    try check_owner(file, st, m);
    // A FIFO, a device or a directory under a cache's name: mapping it
    // fails or blocks, and it is not ours to truncate or unlink.
    if (!st.is_regular()) {
        return m.fail(.corrupt, "{s}/{s} is not a regular file (mode {o}): not a shm-cache region; remove it by hand", .{ dir, file, st.mode });
    }
    return fd;
}

/// The creation lock (exclusive, or shared for an inspector), waited for
/// with backoff until the bound.
fn creation_lock(fd: c.fd_t, shared: bool, timeout_ns: u64, m: *Message) error{Fail}!void {
    const deadline = sys.now_ns() +| timeout_ns;
    var backoff: lock.Backoff = .{};
    // Bound: the deadline check below, once backoff is past spinning.
    while (true) {
        const locked = liveness.creation_try(fd, shared) catch return m.fail(.io, "the creation lock failed: errno {s}", .{@tagName(sys.errno_now())});
        if (locked) return;
        if (backoff.probing() and sys.now_ns() >= deadline) {
            return m.fail(.lock_timeout, "another process held the creation lock for more than {d} ms", .{timeout_ns / std.time.ns_per_ms});
        }
        backoff.wait();
    }
}

/// Serializes open and destroy within the process on macOS, where the
/// creation lock is a per-process record lock and does not exclude our own
/// threads. On Linux each open() has its own OFD, which excludes threads
/// too, so no mutex (a stuck open must not hold up unrelated caches).
var process_mutex: c.pthread_mutex_t = .{};

fn process_lock() void {
    if (!sys.is_linux) _ = c.pthread_mutex_lock(&process_mutex);
}

fn process_unlock() void {
    if (!sys.is_linux) _ = c.pthread_mutex_unlock(&process_mutex);
}

fn forget_after_fork() void {
    process_mutex = .{};
}

const ext_data = ".shmc";

/// The geometry to create a region with, when the caller gave all of it.
fn requested_geometry(options: Options, m: *Message) error{Fail}!?region.Geometry {
    const capacity = options.capacity orelse return null;
    const key_max = options.key_bytes_max orelse return null;
    const value_max = options.value_bytes_max orelse return null;
    var geo = region.geometry(capacity, key_max, value_max, options.ttl_ms orelse 0) catch |e| {
        return switch (e) {
            error.Capacity => m.fail(.invalid_argument, "capacity must be 1..{d}, got {d}", .{ region.capacity_max, capacity }),
            error.KeyBytes => m.fail(.invalid_argument, "maxKeyBytes must be 1..{d}, got {d}", .{ region.key_bytes_max - 1, key_max -| 1 }),
            error.ValueBytes => m.fail(.invalid_argument, "maxValueBytes must be 0..{d}, got {d}", .{ region.value_bytes_max - 1, @as(i128, value_max) - 1 }),
            error.TooLarge => m.fail(.invalid_argument, "the region would exceed {d} bytes (capacity {d} x slot of {d}+{d} bytes)", .{ region.region_bytes_max, capacity, key_max, value_max }),
        };
    };
    geo.codec = @intCast(options.codec orelse 0);
    return geo;
}

/// Opens the cache `name`: attaches to an existing region, or creates one
/// when the caller gave the whole geometry. On failure `m` says why.
pub fn open(dir: []const u8, name: []const u8, options: Options, m: *Message) error{Fail}!*Handle {
    if (!name_valid(name)) {
        return m.fail(.invalid_argument, "cache name must be 1-{d} bytes of letters, digits, '-', '_' or '.', not starting with '.'", .{name_bytes_max});
    }
    if (options.codec) |codec| if (codec >= region.codec_names.len) {
        return m.fail(.invalid_argument, "codec must be 0..{d}, got {d}", .{ region.codec_names.len - 1, codec });
    };
    const wanted = try requested_geometry(options, m);
    var path_buf: [path_bytes_max]u8 = undefined;
    const path = try dir_path(dir, &path_buf, m);
    const dir_fd = open_dir(path, wanted != null, m) catch |e| return not_found_hint(e, name, path, m);
    defer sys.close(dir_fd);
    const timeout_ns = options.lock_timeout_ms *| std.time.ns_per_ms;
    threads.init(); // the fork handler exists before any lock is taken
    process_lock();
    defer process_unlock();
    // A creator may be reserving a large region: opening waits at least
    // open_wait_ns_min for the creation lock, whatever lockTimeoutMs says.
    var fd = open_locked(dir_fd, path, name, .{ .create = wanted != null }, @max(timeout_ns, open_wait_ns_min), m) catch |e| {
        return not_found_hint(e, name, path, m);
    };
    // `fd` changes when the region is replaced: these run on the current one.
    errdefer liveness.close_fd(fd);
    defer liveness.creation_release(fd);
    const mapped = map_region(fd, wanted, options, path, name, m) catch |e| blk: {
        if (m.status != .mismatch or !options.replace) return e;
        const geo = wanted orelse {
            return m.fail(.invalid_argument, "cache {s}: onMismatch \"replace\" needs capacity, maxKeyBytes and maxValueBytes to build the new region", .{name});
        };
        const new = try replace(dir_fd, path, name, fd, geo, m);
        liveness.creation_release(fd);
        liveness.close_fd(fd);
        fd = new.fd;
        break :blk Mapped{ .memory = new.memory, .geo = geo };
    };
    const memory = mapped.memory;
    const geo = mapped.geo;
    errdefer sys.munmap(memory);
    const record = try watch_file(fd, path, name, m);
    errdefer watch.detach(record);
    // Avoid the slot the lock word names: if its owner is dead, a new
    // handle there would make it look alive to everyone else.
    const header: *region.Header = @ptrCast(@alignCast(memory.ptr));
    const owner = lock.word_slot(@atomicLoad(u64, &header.lock_word, .monotonic));
    const claimed = liveness.claim(fd, owner) catch |e| return switch (e) {
        error.TooMany => m.fail(.too_many_handles, "all {d} handle slots of cache {s} are in use", .{ liveness.slots_max, name }),
        error.TooManyInProcess => m.fail(.too_many_handles, "this process already holds {d} handles of cache {s}, the most one process may hold; close handles you no longer use", .{ liveness.handles_per_process_max, name }),
        error.OutOfMemory => m.fail(.out_of_memory, "out of memory", .{}),
        error.Io => m.fail(.io, "cannot lock a liveness slot: errno {s}", .{@tagName(sys.errno_now())}),
    };
    const slot = claimed.slot;
    errdefer liveness.release(fd, slot);
    const h = std.heap.c_allocator.create(Handle) catch {
        return m.fail(.out_of_memory, "out of memory", .{});
    };
    const line = region.counters_line(memory, geo, slot);
    const pid = sys.getpid();
    h.* = .{
        .memory = memory,
        .geo = geo,
        .fd = fd,
        .live_slot = slot,
        .pid = pid,
        .lock_timeout_ns = timeout_ns,
        .line = line,
        // After the claim: the slot's previous handle is gone (counters.zig).
        .base = counters.claim(line, pid),
        .watch = record,
    };
    threads.close_fn = close_now;
    threads.files_forget = forget_after_fork;
    threads.register(h);
    // If the lock word names the slot we just locked afresh (every other
    // slot was taken, or the owner changed since we read it), its owner is
    // provably gone (we hold its byte) and only we could tell: recover now
    // through the own-slot shortcut, one attempt, no waiting.
    const now_owner = lock.word_slot(@atomicLoad(u64, &header.lock_word, .monotonic));
    if (claimed.fresh and now_owner == slot) {
        write.acquire(h, 0) catch {};
        if (h.lock_held) lock.release(h);
    }
    return h;
}

/// An attach (no geometry given) that found no cache: say how to create one.
fn not_found_hint(e: error{Fail}, name: []const u8, path: []const u8, m: *Message) error{Fail} {
    if (m.status != .not_found) return e;
    return m.fail(.not_found, "cache {s} does not exist in {s}; pass capacity, maxKeyBytes and maxValueBytes to create it", .{ name, path });
}

/// This process's watch record of the open file (watch.zig).
fn watch_file(fd: c.fd_t, dir: []const u8, name: []const u8, m: *Message) error{Fail}!*watch.Record {
    const st = sys.fstat(fd) catch return m.fail(.io, "cannot stat {s}/{s}{s}: errno {s}", .{ dir, name, ext_data, sys.last_name() });
    var buf: [name_bytes_max + 16]u8 = undefined;
    var path_buf: [2 * path_bytes_max]u8 = undefined;
    const path = watch.file_path(&path_buf, dir, file_name(&buf, name, ext_data)) orelse {
        return m.fail(.io, "cannot make the path of {s}/{s}{s} absolute: errno {s}", .{ dir, name, ext_data, @tagName(sys.errno_now()) });
    };
    return watch.attach(path, st.dev, st.ino) catch |e| switch (e) {
        error.OutOfMemory => m.fail(.out_of_memory, "out of memory", .{}),
        error.Thread => m.fail(.io, "cannot start the thread that watches cache files: errno {s}", .{@tagName(sys.errno_now())}),
    };
}

/// Marks the region in `fd` retired (`how`), if it is a region of this
/// format (another format's processes do not read the word, and its layout
/// may differ). The caller holds the file's creation lock and has just
/// unlinked it or renamed another file over it.
fn retire(fd: c.fd_t, how: u32) void {
    assert(how != region.retired_live);
    const st = sys.fstat(fd) catch return;
    if (st.size < region.header_bytes) return;
    const memory = sys.mmap_shared(fd, region.header_bytes) catch return;
    defer sys.munmap(memory);
    const header: *region.Header = @ptrCast(@alignCast(memory.ptr));
    // Acquire: pairs with the creator's Release of the marker.
    if (@atomicLoad(u32, &header.initialized, .acquire) != region.initialized_done) return;
    if (header.magic != region.magic or header.format != region.format) return;
    // Release: nothing before it needs publishing today, but a handle that
    // sees the word must never see a state older than the decision.
    @atomicStore(u32, &header.retired, how, .release);
}

const New = struct { fd: c.fd_t, memory: []align(sys.page_size) u8 };

/// onMismatch "replace", holding the creation lock of the cache's current
/// file `old_fd`: builds a new region of geometry `geo` in a temporary
/// file, renames it over the cache's name (one atomic switch for every
/// later opener), and retires the old region so that its handles move on
/// their next operation. Returns the new file, its creation lock held.
/// Openers waiting on the old file's lock find it unlinked and retry on
/// the new one (open_locked). The writer lock is not taken: a dead or
/// stopped owner must not block a replace (watch.zig says what a racing
/// write costs).
fn replace(dir_fd: c.fd_t, dir: []const u8, name: []const u8, old_fd: c.fd_t, geo: region.Geometry, m: *Message) error{Fail}!New {
    remove_stale_tmp(dir_fd, name);
    var buf: [name_bytes_max + 64]u8 = undefined;
    const tmp = std.fmt.bufPrintSentinel(&buf, "{s}{s}.{d}-{x:0>16}.tmp", .{ name, ext_data, sys.getpid(), sys.now_ns() *% 0x9E37_79B9_7F4A_7C15 }, 0) catch unreachable;
    const fd = sys.openat(dir_fd, tmp.ptr, .{ .create = true, .exclusive = true }) catch {
        return m.fail(.io, "cannot create {s}/{s}: errno {s}", .{ dir, tmp, sys.last_name() });
    };
    var done = false;
    defer if (!done) {
        sys.unlinkat(dir_fd, tmp.ptr) catch {};
        liveness.close_fd(fd);
    };
    const locked = liveness.creation_try(fd, false) catch false;
    if (!locked) return m.fail(.io, "cannot lock the new region file {s}/{s}: errno {s}", .{ dir, tmp, @tagName(sys.errno_now()) });
    const memory = try create(fd, geo, dir, m);
    var final_buf: [name_bytes_max + 16]u8 = undefined;
    sys.renameat(dir_fd, tmp.ptr, file_name(&final_buf, name, ext_data).ptr) catch {
        sys.munmap(memory);
        return m.fail(.io, "cannot rename the new region over {s}/{s}{s}: errno {s}", .{ dir, name, ext_data, sys.last_name() });
    };
    done = true;
    retire(old_fd, region.retired_replaced);
    return .{ .fd = fd, .memory = memory };
}

/// Removes `<name>.shmc.<pid>-<hex>.tmp` files that a replacer which died
/// left behind. Only a replacer holding the cache's creation lock creates
/// one, and the caller holds it, so every such file is stale. The pattern
/// is matched exactly: another cache's name may start with this one's.
fn remove_stale_tmp(dir_fd: c.fd_t, name: []const u8) void {
    const list_fd = sys.openat(dir_fd, ".", .{ .directory = true }) catch return;
    const stream = c.fdopendir(list_fd) orelse {
        sys.close(list_fd);
        return;
    };
    defer _ = c.closedir(stream);
    // Bound: one iteration per directory entry.
    while (c.readdir(stream)) |entry| {
        const file = std.mem.sliceTo(&entry.name, 0);
        if (!is_tmp_of(file, name)) continue;
        var z: [name_bytes_max + 64]u8 = undefined;
        const path = std.fmt.bufPrintSentinel(&z, "{s}", .{file}, 0) catch continue;
        sys.unlinkat(dir_fd, path.ptr) catch {};
    }
}

fn is_tmp_of(file: []const u8, name: []const u8) bool {
    if (!std.mem.startsWith(u8, file, name)) return false;
    const rest_full = file[name.len..];
    if (!std.mem.startsWith(u8, rest_full, ext_data ++ ".")) return false;
    if (!std.mem.endsWith(u8, rest_full, ".tmp")) return false;
    const middle = rest_full[ext_data.len + 1 .. rest_full.len - 4];
    const dash = std.mem.indexOfScalar(u8, middle, '-') orelse return false;
    if (dash == 0 or middle.len - dash - 1 != 16) return false;
    for (middle[0..dash]) |ch| if (!std.ascii.isDigit(ch)) return false;
    for (middle[dash + 1 ..]) |ch| if (!std.ascii.isHex(ch)) return false;
    return true;
}

test "is_tmp_of matches only this cache's temporary files" {
    try std.testing.expect(is_tmp_of("a.shmc.12-0123456789abcdef.tmp", "a"));
    try std.testing.expect(!is_tmp_of("a.shmc.1.shmc.12-0123456789abcdef.tmp", "a"));
    try std.testing.expect(is_tmp_of("a.shmc.1.shmc.12-0123456789abcdef.tmp", "a.shmc.1"));
    try std.testing.expect(!is_tmp_of("a.shmc", "a"));
    try std.testing.expect(!is_tmp_of("a.shmc.12-0123.tmp", "a"));
    try std.testing.expect(!is_tmp_of("ab.shmc.12-0123456789abcdef.tmp", "a"));
}

/// Opens the region file and takes its creation lock. A file that was
/// unlinked (by `destroy`) while we waited is not the cache any more: retry
/// on the new one, a bounded number of times.
fn open_locked(dir_fd: c.fd_t, path: []const u8, name: []const u8, flags: sys.OpenFlags, timeout_ns: u64, m: *Message) error{Fail}!c.fd_t {
    const attempts_max = 8;
    var attempt: u32 = 0;
    while (attempt < attempts_max) : (attempt += 1) {
        const fd = try open_file(dir_fd, path, name, ext_data, flags, m);
        // Shared for a read-only inspector; exclusive for openers and destroy.
        creation_lock(fd, flags.read_only, timeout_ns, m) catch |e| {
            liveness.close_fd(fd);
            return e;
        };
        const st = sys.fstat(fd) catch {
            liveness.creation_release(fd);
            liveness.close_fd(fd);
            return m.fail(.io, "cannot stat {s}/{s}{s}: errno {s}", .{ path, name, ext_data, sys.last_name() });
        };
        if (st.nlink > 0) return fd;
        liveness.creation_release(fd);
        liveness.close_fd(fd);
    }
    return m.fail(.io, "cache {s} was destroyed {d} times while this process opened it", .{ name, attempts_max });
}

const Mapped = struct { memory: []align(sys.page_size) u8, geo: region.Geometry };

/// Under the creation lock: map an initialized region that matches what
/// the caller gave, or build one of geometry `wanted` in a new (or never
/// finished) file.
fn map_region(fd: c.fd_t, wanted: ?region.Geometry, options: Options, dir: []const u8, name: []const u8, m: *Message) error{Fail}!Mapped {
    const st = sys.fstat(fd) catch return m.fail(.io, "cannot stat {s}/{s}{s}: errno {s}", .{ dir, name, ext_data, sys.last_name() });
    if (st.size >= region.header_bytes) {
        const memory = sys.mmap_shared(fd, st.size) catch return m.fail(.io, "mmap of {d} bytes failed: errno {s}", .{ st.size, sys.last_name() });
        const header: *region.Header = @ptrCast(@alignCast(memory.ptr));
        // Acquire: pairs with the creator's Release store of the marker, so
        // the configuration written before it is visible.
        if (@atomicLoad(u32, &header.initialized, .acquire) == region.initialized_done) {
            const geo = header_geometry(header, st.size, name, m) catch |e| {
                sys.munmap(memory);
                return e;
            };
            check_requested(geo, options, name, m) catch |e| {
                sys.munmap(memory);
                return e;
            };
            // Monotonic: a flag (watch.zig). Only a file put back under the
            // name by hand (a link kept, then moved back) can be retired
            // here: destroy and replace retire a file after it left the name.
            if (@atomicLoad(u32, &header.retired, .monotonic) != region.retired_live) {
                sys.munmap(memory);
                return m.fail(.mismatch, "cache {s} in {s} holds a region that was destroyed or replaced, put back under the name; open it with onMismatch \"replace\" or destroy it", .{ name, dir });
            }
            const boot = sys.boot_id();
            if (boot != 0 and header.boot_id != boot and !liveness.any_held(fd)) {
                // Written during an earlier boot (a persistent directory):
                // its expiry times mean nothing now. Start empty.
                rebuilding.reset_region(memory, geo);
                header.boot_id = boot;
            }
            return .{ .memory = memory, .geo = geo };
        }
        // A creator writes the magic (over zeroes) before the marker, so a
        // file it never finished holds zero or the magic there. Anything
        // else is not ours to overwrite.
        const seen_magic = header.magic;
        sys.munmap(memory);
        if (seen_magic != 0 and seen_magic != region.magic) {
            return m.fail(.corrupt, "{s}/{s}{s} is not a shm-cache region (bad magic); remove it with SharedCache.destroy to start over", .{ dir, name, ext_data });
        }
        // Never finished by a creator that died: nobody maps it; rebuild.
    } else if (st.size != 0) {
        return m.fail(.corrupt, "{s}/{s}{s} is {d} bytes, smaller than a header: not a shm-cache region; remove it with SharedCache.destroy to start over", .{ dir, name, ext_data, st.size });
    }
    // Never finished by a creator that died. Every process mapping a region
    // holds a liveness byte, so with none held nobody maps it: rebuild.
    if (liveness.any_held(fd)) {
        return m.fail(.corrupt, "{s}/{s}{s} has lost its initialized marker while processes have it open; remove it with SharedCache.destroy to start over", .{ dir, name, ext_data });
    }
    const geo = wanted orelse {
        return m.fail(.not_found, "cache {s} in {s} was never finished by the process creating it; pass capacity, maxKeyBytes and maxValueBytes to create it", .{ name, dir });
    };
    return .{ .memory = try create(fd, geo, dir, m), .geo = geo };
}

/// The geometry of an initialized region, recomputed from the header's
/// configuration (untrusted: copied once, then every derived field and the
/// file size must agree with the recomputation).
fn header_geometry(header: *const region.Header, file_bytes: u64, name: []const u8, m: *Message) error{Fail}!region.Geometry {
    const h = header.*;
    if (h.magic != region.magic) return m.fail(.corrupt, "cache {s}: bad magic, not a shm-cache region; remove it with SharedCache.destroy to start over", .{name});
    if (h.format != region.format) {
        return m.fail(.mismatch, "cache {s} has format {d}, this library reads format {d}; open it with onMismatch \"replace\" or destroy it", .{ name, h.format, region.format });
    }
    var geo = region.geometry(h.capacity, h.key_bytes_max, h.value_bytes_max, h.ttl_ms) catch {
        return m.fail(.corrupt, "cache {s}: header geometry is out of range (capacity {d}, key bytes {d}, value bytes {d}); remove it with SharedCache.destroy to start over", .{ name, h.capacity, h.key_bytes_max, h.value_bytes_max });
    };
    if (h.table_capacity != geo.table_capacity or h.slot_bytes != geo.slot_bytes or
        h.region_bytes != geo.region_bytes)
    {
        return m.fail(.corrupt, "cache {s}: header geometry is inconsistent with its own limits; remove it with SharedCache.destroy to start over", .{name});
    }
    if (file_bytes != geo.region_bytes) {
        return m.fail(.corrupt, "cache {s}: file is {d} bytes, its header says {d}; remove it with SharedCache.destroy to start over", .{ name, file_bytes, geo.region_bytes });
    }
    assert(geo.region_bytes == file_bytes);
    if (h.codec >= region.codec_names.len) {
        return m.fail(.corrupt, "cache {s}: header names codec {d}, which this library does not know; remove it with SharedCache.destroy to start over", .{ name, h.codec });
    }
    geo.codec = h.codec;
    return geo;
}

/// Mismatch for the first field the caller gave that differs from the
/// region's; fields not given are the region's by definition.
fn check_requested(geo: region.Geometry, options: Options, name: []const u8, m: *Message) error{Fail}!void {
    const fields = [_]struct { []const u8, u64, ?u64 }{
        .{ "capacity", geo.capacity, options.capacity },
        .{ "maxKeyBytes", geo.key_bytes_max -| 1, if (options.key_bytes_max) |v| v -| 1 else null },
        .{ "maxValueBytes", geo.value_bytes_max -| 1, if (options.value_bytes_max) |v| v -| 1 else null },
        .{ "ttlMs", geo.ttl_ms, options.ttl_ms },
    };
    for (fields) |f| {
        const given = f[2] orelse continue;
        if (f[1] != given) {
            return m.fail(.mismatch, "cache {s} exists with {s} {d}, but {d} was requested (onMismatch \"replace\" builds a new region)", .{ name, f[0], f[1], given });
        }
    }
    // Both were checked against codec_names (open, header_geometry).
    const codec = options.codec orelse return;
    assert(geo.codec < region.codec_names.len);
    assert(codec < region.codec_names.len);
    if (geo.codec != codec) {
        return m.fail(.mismatch, "cache {s} exists with codec \"{s}\", but \"{s}\" was requested", .{ name, region.codec_names[geo.codec], region.codec_names[codec] });
    }
}

fn create(fd: c.fd_t, geo: region.Geometry, dir: []const u8, m: *Message) error{Fail}![]align(sys.page_size) u8 {
    // Safe to resize: see the top of the file (no one maps an unfinished file).
    sys.ftruncate(fd, 0) catch return m.fail(.io, "ftruncate failed: errno {s}", .{sys.last_name()});
    sys.ftruncate(fd, geo.region_bytes) catch return m.fail(.io, "ftruncate to {d} bytes failed: errno {s}", .{ geo.region_bytes, sys.last_name() });
    sys.reserve(fd, geo.region_bytes) catch {
        if (sys.last() == .NOSPC) return m.fail(.no_space, "no space for a region of {d} bytes in {s}", .{ geo.region_bytes, dir });
        return m.fail(.io, "reserving {d} bytes for the region in {s} failed: errno {s}", .{ geo.region_bytes, dir, sys.last_name() });
    };
    const memory = sys.mmap_shared(fd, geo.region_bytes) catch return m.fail(.io, "mmap of {d} bytes failed: errno {s}", .{ geo.region_bytes, sys.last_name() });
    region.init_header(memory, geo, sys.boot_id());
    return memory;
}

/// Releases a held lock (its holder is between mutations: seq is even unless
/// a fault hook parked it), then the slot and the mapping. Frees `h`.
pub fn close(h: *Handle) void {
    if (h.fork_epoch != sys.fork_epoch) {
        // A fork child's copy: the lock, the slot and the registry entry are
        // the parent's. Only drop this process's mapping and descriptor.
        // The watch record too is the parent's (watch.forget_after_fork).
        sys.munmap(h.memory);
        sys.close(h.fd);
        std.heap.c_allocator.destroy(h);
        return;
    }
    // False when the opener thread's exit already took it to close it.
    if (!threads.unregister(h)) return;
    close_now(h);
}

/// Closes a handle already out of the registry (threads.zig calls this).
fn close_now(h: *Handle) void {
    if (h.lock_held) {
        // Only a parked fault hook can leave seq odd here: repair before
        // publishing, never make a half-made state look consistent.
        if (seqlock.is_odd(h.header())) {
            rebuilding.rebuild(h);
            seqlock.write_end(h.header());
        }
        lock.release(h);
    }
    sys.munmap(h.memory);
    liveness.release(h.fd, h.live_slot);
    liveness.close_fd(h.fd);
    if (h.watch) |w| watch.detach(w);
    std.heap.c_allocator.destroy(h);
}

/// Removes the cache's file, under its creation lock so that no opener is
/// half-way through it. The region is then marked retired, so that every
/// handle still mapping it answers Retired from its next operation on
/// (lib/cache.ts then reopens the name: a new region, or NotFound); the
/// next open creates a new region.
pub fn destroy(dir: []const u8, name: []const u8, m: *Message) error{Fail}!void {
    if (!name_valid(name)) {
        return m.fail(.invalid_argument, "cache name must be 1-{d} bytes of letters, digits, '-', '_' or '.', not starting with '.'", .{name_bytes_max});
    }
    var path_buf: [path_bytes_max]u8 = undefined;
    const path = try dir_path(dir, &path_buf, m);
    const dir_fd = open_dir(path, false, m) catch |e| {
        if (m.status == .not_found) return; // no directory: nothing to remove
        return e;
    };
    defer sys.close(dir_fd);
    threads.init();
    process_lock();
    defer process_unlock();
    const fd = open_locked(dir_fd, path, name, .{}, destroy_timeout_ns, m) catch |e| {
        if (m.status == .not_found) return; // no file: nothing to remove
        return e;
    };
    defer liveness.close_fd(fd);
    defer liveness.creation_release(fd);
    var buf: [name_bytes_max + 16]u8 = undefined;
    const file = file_name(&buf, name, ext_data);
    sys.unlinkat(dir_fd, file.ptr) catch {
        if (sys.last() != .NOENT) return m.fail(.io, "cannot remove {s}/{s}: errno {s}", .{ path, file, sys.last_name() });
    };
    // After the unlink: a region marked retired is never left under the
    // name (if the unlink failed, nothing changed). NOENT: removed by
    // someone else meanwhile; this file is not the cache's either way.
    retire(fd, region.retired_destroyed);
}

/// What `inspect` read: a moment's picture of a cache.
pub const Inspection = struct {
    geo: region.Geometry,
    file_bytes: u64,
    /// Entries now (clamped to the capacity: the file is untrusted).
    count: u32,
    /// Open handles (held liveness slots); their PIDs went to `pids`.
    handles: u32,
    lock_word: u64,
    /// Whether the handle named by the lock word is alive (false when free).
    owner_alive: bool,
    seq: u64,
    /// The per-handle counters summed over every handle ever (counters.zig).
    totals: counters.Values,
    /// The region's shared counters: sets, deletes, evictions, expirations,
    /// recoveries, rebuilds.
    shared: [6]u64,
};

/// Reads the cache `name` without becoming one of its handles: it takes no
/// liveness slot (an inspector would count itself among the open handles,
/// and could not be told from a user), never the writer lock, and maps the
/// region read-only, so it cannot write it at all. For the moment of the
/// read it holds the creation lock shared: openers and destroy wait that
/// long (they take it exclusive), and no opener can truncate or rebuild the
/// file under the mapping. The PIDs of the open handles (from their counter
/// lines) go to the first `pids.len` entries of `pids`.
pub fn inspect(dir: []const u8, name: []const u8, pids: []u32, m: *Message) error{Fail}!Inspection {
    if (!name_valid(name)) {
        return m.fail(.invalid_argument, "cache name must be 1-{d} bytes of letters, digits, '-', '_' or '.', not starting with '.'", .{name_bytes_max});
    }
    var path_buf: [path_bytes_max]u8 = undefined;
    const path = try dir_path(dir, &path_buf, m);
    const dir_fd = try open_dir(path, false, m);
    defer sys.close(dir_fd);
    process_lock();
    defer process_unlock();
    const fd = try open_locked(dir_fd, path, name, .{ .read_only = true }, open_wait_ns_min, m);
    defer liveness.close_fd(fd);
    defer liveness.creation_release(fd);
    const st = sys.fstat(fd) catch return m.fail(.io, "cannot stat {s}/{s}{s}: errno {s}", .{ path, name, ext_data, sys.last_name() });
    if (st.size == 0) {
        // A creator's O_CREAT comes before its exclusive creation lock, so
        // an inspector can take the lock in between: not a cache yet (as
        // for an opener without geometry), and nothing is wrong with it.
        return m.fail(.not_found, "cache {s} in {s} is being created (or its creator died before sizing it)", .{ name, path });
    }
    if (st.size < region.header_bytes) {
        return m.fail(.corrupt, "{s}/{s}{s} is {d} bytes, smaller than a header: never finished, or not a shm-cache region", .{ path, name, ext_data, st.size });
    }
    const memory = sys.mmap_read(fd, st.size) catch return m.fail(.io, "mmap of {d} bytes failed: errno {s}", .{ st.size, sys.last_name() });
    defer sys.munmap(memory);
    const header: *const region.Header = @ptrCast(@alignCast(memory.ptr));
    // Acquire: pairs with the creator's Release store of the marker.
    if (@atomicLoad(u32, &header.initialized, .acquire) != region.initialized_done) {
        // As in map_region: a creator writes the magic over zeroes first.
        const seen_magic = header.magic;
        if (seen_magic != 0 and seen_magic != region.magic) {
            return m.fail(.corrupt, "{s}/{s}{s} is not a shm-cache region (bad magic)", .{ path, name, ext_data });
        }
        return m.fail(.corrupt, "{s}/{s}{s} was never finished by the process creating it (or lost its marker)", .{ path, name, ext_data });
    }
    const geo = try header_geometry(header, st.size, name, m);
    return inspect_mapped(fd, memory, geo, pids, m);
}

fn inspect_mapped(fd: c.fd_t, memory: []align(sys.page_size) u8, geo: region.Geometry, pids: []u32, m: *Message) error{Fail}!Inspection {
    assert(memory.len == geo.region_bytes);
    const header: *const region.Header = @ptrCast(@alignCast(memory.ptr));
    var slots: [liveness.slots_max]u32 = undefined;
    const handles = liveness.held_slots(fd, &slots) catch return m.fail(.io, "probing the liveness slots failed: errno {s}", .{@tagName(sys.errno_now())});
    for (slots[0..@min(handles, slots.len)], 0..) |slot, i| {
        if (i >= pids.len) break;
        // Monotonic: diagnostics only.
        pids[i] = @atomicLoad(u32, &region.counters_line(memory, geo, slot).pid, .monotonic);
    }
    // Monotonic loads throughout: a moment's figures, each untorn; none is
    // used as an offset.
    const word = @atomicLoad(u64, &header.lock_word, .monotonic);
    const owner = lock.word_slot(word);
    return .{
        .geo = geo,
        .file_bytes = memory.len,
        .count = @min(@atomicLoad(u32, &header.count, .monotonic), geo.capacity),
        .handles = handles,
        .lock_word = word,
        .owner_alive = owner != 0 and liveness.is_alive(fd, owner),
        .seq = @atomicLoad(u64, &header.seq, .monotonic),
        .totals = counters.sum(memory, geo),
        .shared = .{
            @atomicLoad(u64, &header.sets, .monotonic),
            @atomicLoad(u64, &header.deletes, .monotonic),
            @atomicLoad(u64, &header.evictions, .monotonic),
            @atomicLoad(u64, &header.expirations, .monotonic),
            @atomicLoad(u64, &header.recoveries, .monotonic),
            @atomicLoad(u64, &header.rebuilds, .monotonic),
        },
    };
}

/// The cache directory (the caller's, or the per-user default) into `out`,
/// after the checks an open makes (not a symlink, ours alone); not_found
/// when it does not exist. Lists of caches read it (`shm-cache ls`).
pub fn resolve_dir(dir: []const u8, out: []u8, m: *Message) error{Fail}![]const u8 {
    var path_buf: [path_bytes_max]u8 = undefined;
    const path = try dir_path(dir, &path_buf, m);
    const dir_fd = try open_dir(path, false, m);
    sys.close(dir_fd);
    if (path.len > out.len) return m.fail(.invalid_argument, "the directory path is {d} bytes, the buffer {d}", .{ path.len, out.len });
    @memcpy(out[0..path.len], path);
    return out[0..path.len];
}

/// The names of the caches in the directory (files `<name>.shmc` with a
/// valid name; symbolic links and other files skipped), each followed by a
/// newline, into `out`. Returns how many bytes that takes: more than
/// `out.len` means the list was cut and the caller should ask again with a
/// larger buffer. A missing directory is not_found. Reading the directory
/// here, not in TypeScript, spares Deno callers a read permission on it
/// (Deno asks for --allow-all to read under /dev).
pub fn list(dir: []const u8, out: []u8, m: *Message) error{Fail}!usize {
    var path_buf: [path_bytes_max]u8 = undefined;
    const path = try dir_path(dir, &path_buf, m);
    const dir_fd = try open_dir(path, false, m);
    const stream = c.fdopendir(dir_fd) orelse {
        sys.close(dir_fd);
        return m.fail(.io, "cannot read directory {s}: errno {s}", .{ path, @tagName(sys.errno_now()) });
    };
    defer _ = c.closedir(stream);
    var len: usize = 0;
    // Bound: one iteration per directory entry; readdir returns null at
    // the end (or on an error, which ends the list early).
    while (c.readdir(stream)) |entry| {
        const file = std.mem.sliceTo(&entry.name, 0);
        if (entry.type != c.DT.REG and entry.type != c.DT.UNKNOWN) continue;
        if (!std.mem.endsWith(u8, file, ext_data)) continue;
        const name = file[0 .. file.len - ext_data.len];
        if (!name_valid(name)) continue;
        if (len + name.len + 1 <= out.len) {
            @memcpy(out[len..][0..name.len], name);
            out[len + name.len] = '\n';
        }
        len += name.len + 1;
    }
    return len;
}

const destroy_timeout_ns = 10 * std.time.ns_per_s;
const open_wait_ns_min = 10 * std.time.ns_per_s;
