//! Loads the built shared library with dlopen (its path comes from build.zig) and drives it through the C ABI, as the TypeScript side does.

const std = @import("std");
const c = std.c;

const OpenFn = *const fn (?[*]const u8, u32, ?[*]const u8, u32, [*]f64, [*]u8, u32, [*]i32) callconv(.c) ?*anyopaque;
const CloseFn = *const fn (?*anyopaque) callconv(.c) void;
const InsertFn = *const fn (?*anyopaque, ?[*]const u8, u32, ?[*]const u8, u32, f64, u32) callconv(.c) i32;
const LookupFn = *const fn (?*anyopaque, ?[*]const u8, u32, ?[*]u8, u32) callconv(.c) i32;
const RemoveFn = *const fn (?*anyopaque, ?[*]const u8, u32) callconv(.c) i32;
const VerifyFn = *const fn (?*anyopaque, u32, [*]u8, u32, [*]u32) callconv(.c) i32;
const BindFn = *const fn (?*anyopaque, ?[*]u8, u32, ?[*]u8, u32, ?[*]u32, u32, ?[*]const u32, u32) callconv(.c) i32;
const GetFn = *const fn (?*anyopaque, u32, u32) callconv(.c) i32;
const PutFn = *const fn (?*anyopaque, u32, u32, f64, u32) callconv(.c) i32;
const DelFn = *const fn (?*anyopaque, u32) callconv(.c) i32;
const InspectFn = *const fn (?[*]const u8, u32, ?[*]const u8, u32, [*]f64, [*]u32, u32, [*]u8, u32, [*]i32) callconv(.c) i32;
const StatsFn = *const fn (?*anyopaque, u32, [*]f64) callconv(.c) void;
const DestroyFn = *const fn (?[*]const u8, u32, ?[*]const u8, u32, [*]u8, u32, [*]i32) callconv(.c) i32;

fn symbol(lib: *anyopaque, comptime T: type, name: [*:0]const u8) !T {
    const p = c.dlsym(lib, name) orelse return error.MissingSymbol;
    return @ptrCast(@alignCast(p));
}

test "the shared library round-trips through its C ABI" {
    var path_buf: [4096]u8 = undefined;
    const path = try std.fmt.bufPrintSentinel(&path_buf, "{s}", .{@import("paths").library}, 0);
    const lib = c.dlopen(path, .{ .NOW = true }) orelse return error.DlopenFailed;
    defer _ = c.dlclose(lib);
    const open = try symbol(lib, OpenFn, "shmc_open");
    const close = try symbol(lib, CloseFn, "shmc_close");
    const insert = try symbol(lib, InsertFn, "shmc_insert");
    const lookup = try symbol(lib, LookupFn, "shmc_lookup");
    const remove = try symbol(lib, RemoveFn, "shmc_remove");
    const verify = try symbol(lib, VerifyFn, "shmc_verify");
    const destroy = try symbol(lib, DestroyFn, "shmc_destroy");

    var dir_buf: [64]u8 = undefined;
    const dir = try std.fmt.bufPrint(&dir_buf, "/tmp/shmc-zig-test-{d}", .{c.getpid()});
    const name = "load-test";
    var err: [256]u8 = undefined;
    var status: [2]i32 = .{ 0, 0 };
    var config = [_]f64{ 64, 32, 64, 0, 1000, -1, 0 };
    const h = open(dir.ptr, @intCast(dir.len), name, name.len, &config, &err, err.len, &status) orelse {
        std.debug.print("open failed: {s}\n", .{err[0..@intCast(status[1])]});
        return error.OpenFailed;
    };
    defer {
        close(h);
        _ = destroy(dir.ptr, @intCast(dir.len), name, name.len, &err, err.len, &status);
        var z: [65]u8 = undefined;
        const dz = std.fmt.bufPrintSentinel(&z, "{s}", .{dir}, 0) catch unreachable;
        _ = c.rmdir(dz.ptr);
    }
    try std.testing.expectEqual(@as(i32, 0), insert(h, "k1", 2, "value-1", 7, -1, 0));
    var out: [64]u8 = undefined;
    try std.testing.expectEqual(@as(i32, 7), lookup(h, "k1", 2, &out, out.len));
    try std.testing.expectEqualStrings("value-1", out[0..7]);
    try std.testing.expectEqual(@as(i32, -1), lookup(h, "nope", 4, &out, out.len));

    // The bound-buffer calls: lengths only, the slot and its checksum in meta.
    const bind = try symbol(lib, BindFn, "shmc_bind");
    const get = try symbol(lib, GetFn, "shmc_get");
    const put = try symbol(lib, PutFn, "shmc_put");
    const del = try symbol(lib, DelFn, "shmc_del");
    var io_key: [32]u8 = undefined;
    var io_value: [64]u8 = undefined;
    var meta: [8]u32 = @splat(0);
    try std.testing.expectEqual(@as(i32, -2), get(h, 2, 1)); // not bound yet
    var memo: [12]u32 = @splat(0xffff_ffff); // two entries of 6
    try std.testing.expectEqual(@as(i32, -2), bind(h, &io_key, io_key.len, &io_value, io_value.len, &meta, meta.len, &memo, 3));
    try std.testing.expectEqual(@as(i32, -2), bind(h, &io_key, io_key.len, &io_value, io_value.len, &meta, 4, &memo, 2));
    try std.testing.expectEqual(@as(i32, 0), bind(h, &io_key, io_key.len, &io_value, io_value.len, &meta, meta.len, &memo, 2));
    @memcpy(io_key[0..2], "k2");
    @memcpy(io_value[0..3], "abc");
    try std.testing.expectEqual(@as(i32, 0), put(h, 2, 3, -1, 0));
    @memset(&io_value, 0);
    try std.testing.expectEqual(@as(i32, 3), get(h, 2, 1));
    try std.testing.expectEqualStrings("abc", io_value[0..3]);
    const stamp = meta[2];
    try std.testing.expectEqual(@as(u32, 0), meta[1]);
    try std.testing.expectEqual(@as(i32, 3), get(h, 2, 0));
    try std.testing.expectEqual(stamp, meta[2]);
    // With the write in the memo, a get reports it and copies nothing.
    const e = (meta[0] & 1) * 6;
    memo[e..][0..6].* = .{ meta[0], 3, meta[2], meta[3], meta[4], meta[5] };
    @memset(&io_value, 0);
    try std.testing.expectEqual(@as(i32, 3), get(h, 2, 1));
    try std.testing.expectEqual(@as(u32, 1), meta[1]);
    try std.testing.expectEqual(@as(u8, 0), io_value[0]);
    // A new write of the slot: a new stamp, so the memo no longer matches.
    @memcpy(io_value[0..3], "xyz");
    try std.testing.expectEqual(@as(i32, 0), put(h, 2, 3, -1, 0));
    @memset(&io_value, 0);
    try std.testing.expectEqual(@as(i32, 3), get(h, 2, 1));
    try std.testing.expect(meta[2] != stamp);
    try std.testing.expectEqual(@as(u32, 0), meta[1]);
    try std.testing.expectEqualStrings("xyz", io_value[0..3]);
    try std.testing.expectEqual(@as(i32, -2), get(h, io_key.len + 1, 1)); // longer than the bound buffer
    try std.testing.expectEqual(@as(i32, -2), put(h, 2, io_value.len + 1, -1, 0));
    try std.testing.expectEqual(@as(i32, 0), del(h, 2));
    try std.testing.expectEqual(@as(i32, -1), get(h, 2, 1));
    // Fill beyond capacity: eviction keeps the cache usable and consistent.
    var i: u32 = 0;
    while (i < 200) : (i += 1) {
        var kb: [16]u8 = undefined;
        const k = try std.fmt.bufPrint(&kb, "key-{d}", .{i});
        try std.testing.expectEqual(@as(i32, 0), insert(h, k.ptr, @intCast(k.len), "v", 1, -1, 0));
    }
    // add refuses a live key and takes an absent one.
    try std.testing.expectEqual(@as(i32, -1), insert(h, "key-199", 7, "x", 1, -1, 1));
    try std.testing.expectEqual(@as(i32, 0), remove(h, "key-199", 7));
    try std.testing.expectEqual(@as(i32, 0), insert(h, "key-199", 7, "x", 1, -1, 1));
    try std.testing.expectEqual(@as(i32, 0), remove(h, "key-199", 7));
    try std.testing.expectEqual(@as(i32, -1), remove(h, "key-199", 7));
    // A child of fork() must not use its parent's handle: every entry point
    // refuses it (status 14, forked), and its close touches only its copy.
    const pid = c.fork();
    if (pid == 0) {
        var ok = insert(h, "child", 5, "x", 1, -1, 0) == -14;
        ok = ok and lookup(h, "k1", 2, &out, out.len) == -14;
        close(h);
        c._exit(if (ok) 0 else 1);
    }
    var wstatus: c_int = 0;
    _ = c.waitpid(pid, &wstatus, 0);
    try std.testing.expectEqual(@as(c_int, 0), wstatus);
    try std.testing.expectEqual(@as(i32, 0), insert(h, "parent", 6, "y", 1, -1, 0));

    var report: [512]u8 = undefined;
    var report_len: [1]u32 = .{0};
    const problems = verify(h, 0, &report, report.len, &report_len);
    if (problems != 0) std.debug.print("{s}\n", .{report[0..report_len[0]]});
    try std.testing.expectEqual(@as(i32, 0), problems);

    // Attach without geometry: the region's is written back; a missing
    // cache without geometry is not_found (16), not created.
    var attach = [_]f64{ -1, -1, -1, -1, 1000, -1, 0 };
    const h2 = open(dir.ptr, @intCast(dir.len), name, name.len, &attach, &err, err.len, &status) orelse return error.OpenFailed;
    defer close(h2);
    try std.testing.expectEqualSlices(f64, &.{ 64, 32, 64, 0 }, attach[0..4]);
    try std.testing.expectEqual(@as(f64, 0), attach[5]); // created without a codec: json
    var missing = [_]f64{ 64, -1, 64, -1, 1000, -1, 0 };
    try std.testing.expect(open(dir.ptr, @intCast(dir.len), "nope", 4, &missing, &err, err.len, &status) == null);
    try std.testing.expectEqual(@as(i32, 16), status[0]);
    // A differing value given is a mismatch (7).
    var differ = [_]f64{ 65, -1, -1, -1, 1000, -1, 0 };
    try std.testing.expect(open(dir.ptr, @intCast(dir.len), name, name.len, &differ, &err, err.len, &status) == null);
    try std.testing.expectEqual(@as(i32, 7), status[0]);
    // So is another codec (the region was created json), naming the field.
    var structured = [_]f64{ -1, -1, -1, -1, 1000, 1, 0 };
    try std.testing.expect(open(dir.ptr, @intCast(dir.len), name, name.len, &structured, &err, err.len, &status) == null);
    try std.testing.expectEqual(@as(i32, 7), status[0]);
    try std.testing.expect(std.mem.indexOf(u8, err[0..@intCast(status[1])], "codec \"json\"") != null);

    // Per-handle counters sum over handles; an inspector sees two handles.
    const stats = try symbol(lib, StatsFn, "shmc_stats");
    const inspect = try symbol(lib, InspectFn, "shmc_inspect");
    try std.testing.expectEqual(@as(i32, 7), lookup(h2, "k1", 2, &out, out.len));
    var own: [17]f64 = undefined;
    var all: [17]f64 = undefined;
    stats(h2, 0, &own);
    stats(h2, 1, &all);
    try std.testing.expectEqual(@as(f64, 1), own[0]);
    stats(h, 0, &own);
    try std.testing.expectEqual(all[0], own[0] + 1);
    var info: [25]f64 = undefined;
    var pids: [4]u32 = @splat(0);
    try std.testing.expectEqual(@as(i32, 2), inspect(dir.ptr, @intCast(dir.len), name, name.len, &info, &pids, pids.len, &err, err.len, &status));
    try std.testing.expectEqual(all[0], info[0]);
    try std.testing.expectEqual(@as(u32, @intCast(c.getpid())), pids[0]);
    try std.testing.expectEqual(@as(u32, @intCast(c.getpid())), pids[1]);
}
