//! The arena (issue 10, design10.md §3–§4): the byte budget's data area, a
//! sequence of 64-byte granules tiled by *runs*. Every run starts with a
//! one-granule header (`Run`); an entry is one run (header, key, value,
//! rounded up to a granule), and free space is free runs.
//!
//! The only authoritative allocator state is the **run word** at the start
//! of every run: kind and granule count in one atomic u64, so a split, a
//! commit, a free and a merge are each one 8-byte store that a crash cannot
//! tear. Runs tile the arena exactly (each run word says where the next run
//! starts), so a crash never leaves it unwalkable. Everything else here is
//! derived and rebuilt from a walk: `prev_granules` (the boundary tag that
//! finds a left neighbour), the segregated free lists and their bitmaps
//! (TLSF-style: first level log2 of the size, 4 second-level bins), and the
//! free granule count.
//!
//! Invariants (verify checks them, rebuild restores them):
//! - the walk from granule 0 covers every granule exactly once;
//! - no two free runs are adjacent (release merges at once);
//! - every free run is on the list of its class exactly once, and a class's
//!   bit is set iff its list is non-empty;
//! - `prev_granules` of a run is the granule count of the run before it
//!   (0 for the first).
//! Writers only (lock held, seq odd): nothing here is read by lock-free
//! readers except run words and entry headers, which they validate.
//!
//! STATUS: written and unit-tested on branch i10s as the first piece of
//! issue 10 part B; not yet used by the store.

const std = @import("std");
const assert = std.debug.assert;

pub const granule_bytes: u32 = 64;
pub const nil: u32 = 0xffff_ffff;

/// The largest arena, in granules: an entry index must stay below the
/// decode memo's empty marker (nil) and fit a bucket's 32 bits.
pub const granules_max: u32 = nil - 1;

pub const Kind = enum(u8) {
    invalid = 0,
    free = 0x46,
    writing = 0x57,
    live = 0x4C,
};

const run_magic: u8 = 0xA5;

/// kind u8 | magic u8 | reserved u16 | granules u32.
pub fn word_make(kind: Kind, granules: u32) u64 {
    assert(kind != .invalid);
    assert(granules >= 1);
    return @as(u64, @intFromEnum(kind)) | (@as(u64, run_magic) << 8) | (@as(u64, granules) << 32);
}

pub const Word = struct { kind: Kind, granules: u32 };

/// A run word read from the file: `invalid` unless its magic, reserved bits
/// and kind are right and its count is not 0. Untrusted input: the caller
/// still checks that the run ends inside the arena.
pub fn word_parse(word: u64) Word {
    const bad: Word = .{ .kind = .invalid, .granules = 0 };
    if ((word >> 8) & 0xff != run_magic) return bad;
    if ((word >> 16) & 0xffff != 0) return bad;
    const granules: u32 = @truncate(word >> 32);
    if (granules == 0) return bad;
    const kind: Kind = switch (@as(u8, @truncate(word))) {
        0x46 => .free,
        0x57 => .writing,
        0x4C => .live,
        else => return bad,
    };
    return .{ .kind = kind, .granules = granules };
}

/// The first granule of every run. For a free run only `run`,
/// `prev_granules` and the links mean anything.
pub const Run = extern struct {
    run: u64,
    /// Granules of the physically previous run, 0 at granule 0 (derived).
    prev_granules: u32,
    key_len: u32,
    /// stamp << 1 | visited (readers CAS the low bit).
    stamp_visited: u64,
    expires_ns: u64,
    value_len: u32,
    hash_lo: u32,
    value_sum: u64,
    checksum: u64,
    /// FIFO (live) or free-list (free) links: entry indexes or nil.
    link_prev: u32,
    link_next: u32,

    comptime {
        assert(@sizeOf(Run) == granule_bytes);
        assert(@alignOf(Run) == 8);
    }
};

/// Granules of an entry with a key of `key_len` and a value of `value_len`
/// bytes: one header granule, then key and value rounded up.
pub fn entry_granules(key_len: u32, value_len: u32) u64 {
    const body: u64 = @as(u64, key_len) + value_len;
    return 1 + (body + granule_bytes - 1) / granule_bytes;
}

pub const fl_count = 32;
pub const sl_count = 4;

pub const Class = struct { fl: u5, sl: u2 };

/// The size class of a run of `n` granules: first level log2(n), second
/// level the next two bits (for n < 4 the exact size).
pub fn class_of(n: u32) Class {
    assert(n >= 1);
    const fl: u5 = @intCast(31 - @clz(n));
    const sl: u2 = if (fl < 2)
        @intCast(n - (@as(u32, 1) << fl))
    else
        @intCast((n >> (fl - 2)) & 3);
    return .{ .fl = fl, .sl = sl };
}

/// The derived free-list index (lives in the region header; rebuilt).
pub const Index = extern struct {
    fl_bitmap: u32,
    sl_bitmaps: [fl_count]u8,
    pad: u32 = 0,
    heads: [fl_count][sl_count]u32,
    free_granules: u64,
    free_runs: u64,

    pub fn reset(x: *Index) void {
        x.fl_bitmap = 0;
        x.sl_bitmaps = @splat(0);
        x.heads = @splat(@splat(nil));
        x.free_granules = 0;
        x.free_runs = 0;
    }
};

pub const Corrupt = error{Corrupt};

pub const Arena = struct {
    /// granules * granule_bytes bytes, 64-aligned.
    bytes: []align(64) u8,
    granules: u32,
    index: *Index,

    pub fn run(a: Arena, i: u32) *Run {
        assert(i < a.granules);
        return @ptrCast(@alignCast(a.bytes.ptr + @as(usize, i) * granule_bytes));
    }

    pub fn word(a: Arena, i: u32) Word {
        // Monotonic: readers load run words concurrently.
        return word_parse(@atomicLoad(u64, &a.run(i).run, .monotonic));
    }

    /// The one commit store of a split, free, merge or fill.
    pub fn store_word(a: Arena, i: u32, kind: Kind, granules: u32) void {
        assert(@as(u64, i) + granules <= a.granules);
        @atomicStore(u64, &a.run(i).run, word_make(kind, granules), .monotonic);
    }

    /// The whole arena as one free run, lists rebuilt (clear, creation).
    pub fn reset(a: Arena) void {
        assert(a.granules >= 1);
        a.index.reset();
        const r = a.run(0);
        r.prev_granules = 0;
        a.store_word(0, .free, a.granules);
        a.push(0);
    }

    fn push(a: Arena, i: u32) void {
        const w = a.word(i);
        assert(w.kind == .free);
        const c = class_of(w.granules);
        const r = a.run(i);
        const head = a.index.heads[c.fl][c.sl];
        r.link_prev = nil;
        r.link_next = head;
        if (head != nil) a.run(head).link_prev = i;
        a.index.heads[c.fl][c.sl] = i;
        a.index.sl_bitmaps[c.fl] |= @as(u8, 1) << c.sl;
        a.index.fl_bitmap |= @as(u32, 1) << c.fl;
        a.index.free_granules += w.granules;
        a.index.free_runs += 1;
    }

    /// Takes free run `i` (of `granules`) off its list.
    fn unlink(a: Arena, i: u32, granules: u32) Corrupt!void {
        const c = class_of(granules);
        const r = a.run(i);
        const prev = r.link_prev;
        const next = r.link_next;
        if (prev != nil and prev >= a.granules) return error.Corrupt;
        if (next != nil and next >= a.granules) return error.Corrupt;
        if (prev == nil) {
            if (a.index.heads[c.fl][c.sl] != i) return error.Corrupt;
            a.index.heads[c.fl][c.sl] = next;
        } else a.run(prev).link_next = next;
        if (next != nil) a.run(next).link_prev = prev;
        if (a.index.heads[c.fl][c.sl] == nil) {
            a.index.sl_bitmaps[c.fl] &= ~(@as(u8, 1) << c.sl);
            if (a.index.sl_bitmaps[c.fl] == 0) a.index.fl_bitmap &= ~(@as(u32, 1) << c.fl);
        }
        if (a.index.free_granules < granules or a.index.free_runs == 0) return error.Corrupt;
        a.index.free_granules -= granules;
        a.index.free_runs -= 1;
    }

    /// A free run of at least `g` granules, or null. Bound: 8 runs of g's
    /// own class, then one bitmap search (every run of a higher class fits).
    pub fn find(a: Arena, g: u32) Corrupt!?u32 {
        assert(g >= 1);
        const c = class_of(g);
        var i = a.index.heads[c.fl][c.sl];
        var n: u32 = 0;
        while (i != nil and n < 8) : (n += 1) {
            if (i >= a.granules) return error.Corrupt;
            const w = a.word(i);
            if (w.kind != .free) return error.Corrupt;
            if (w.granules >= g) return i;
            i = a.run(i).link_next;
        }
        // Higher second levels of the same first level, then higher first levels.
        const sl_above: u8 = a.index.sl_bitmaps[c.fl] & @as(u8, @truncate(@as(u32, 0xf) << (@as(u5, c.sl) + 1)));
        if (sl_above != 0) return a.index.heads[c.fl][@ctz(sl_above)];
        const fl_above: u64 = @as(u64, a.index.fl_bitmap) & (~@as(u64, 0) << (@as(u6, c.fl) + 1));
        if (fl_above == 0) return null;
        const fl: u5 = @intCast(@ctz(fl_above));
        const sl_bits = a.index.sl_bitmaps[fl];
        if (sl_bits == 0) return error.Corrupt;
        return a.index.heads[fl][@ctz(sl_bits)];
    }

    /// Splits free run `s` at its low end: returns it as a `writing` run of
    /// exactly `g` granules; the rest stays free. The remainder's header is
    /// written before the run word (the commit), so a crash in between
    /// leaves the old free run whole: its run word still spans both.
    pub fn take(a: Arena, s: u32, g: u32) Corrupt!void {
        const w = a.word(s);
        if (w.kind != .free or w.granules < g) return error.Corrupt;
        if (@as(u64, s) + w.granules > a.granules) return error.Corrupt;
        try a.unlink(s, w.granules);
        if (w.granules > g) {
            const rest = s + g;
            const rr = a.run(rest);
            rr.prev_granules = g;
            a.store_word(rest, .free, w.granules - g);
            const after = s + w.granules;
            if (after < a.granules) a.run(after).prev_granules = w.granules - g;
            a.push(rest);
        }
        a.store_word(s, .writing, g);
        assert(a.word(s).granules == g);
    }

    /// Frees run `s` (live or writing) and merges it with free neighbours;
    /// returns the start of the merged free run. Each step is one run word
    /// store: free (the commit), merge right, merge left.
    pub fn release(a: Arena, s: u32) Corrupt!u32 {
        const w = a.word(s);
        if (w.kind != .live and w.kind != .writing) return error.Corrupt;
        if (@as(u64, s) + w.granules > a.granules) return error.Corrupt;
        var start = s;
        var n = w.granules;
        a.store_word(s, .free, n);
        const right = s + n;
        if (right < a.granules) {
            const rw = a.word(right);
            if (rw.kind == .invalid or @as(u64, right) + rw.granules > a.granules) return error.Corrupt;
            if (rw.kind == .free) {
                try a.unlink(right, rw.granules);
                n += rw.granules;
                a.store_word(s, .free, n);
            }
        }
        const prev = a.run(s).prev_granules;
        if (s > 0) {
            if (prev == 0 or prev > s) return error.Corrupt;
            const left = s - prev;
            const lw = a.word(left);
            if (lw.kind == .invalid or lw.granules != prev) return error.Corrupt;
            if (lw.kind == .free) {
                try a.unlink(left, lw.granules);
                n += lw.granules;
                start = left;
                a.store_word(left, .free, n);
            }
        }
        const after = start + n;
        if (after < a.granules) a.run(after).prev_granules = n;
        a.push(start);
        return start;
    }

    /// Walks the runs from granule 0: bounded by `granules` steps, since
    /// each advances by at least one granule.
    pub const Walk = struct {
        a: Arena,
        at: u32 = 0,

        pub const Step = struct { start: u32, word: Word };

        /// The next run, or null at the end; Corrupt at a run word that is
        /// invalid or runs past the end.
        pub fn next(w: *Walk) Corrupt!?Step {
            if (w.at >= w.a.granules) return null;
            const start = w.at;
            const rw = w.a.word(start);
            if (rw.kind == .invalid) return error.Corrupt;
            if (@as(u64, start) + rw.granules > w.a.granules) return error.Corrupt;
            w.at = start + rw.granules;
            return .{ .start = start, .word = rw };
        }
    };

    pub fn walk(a: Arena) Walk {
        return .{ .a = a };
    }

    /// Problems with the invariants at the top of the file, or 0.
    pub fn check(a: Arena) u32 {
        var problems: u32 = 0;
        var w = a.walk();
        var prev_n: u32 = 0;
        var prev_free = false;
        var free_granules: u64 = 0;
        var free_runs: u64 = 0;
        var steps: u32 = 0;
        while (w.next() catch return problems + 1) |step| : (steps += 1) {
            if (a.run(step.start).prev_granules != prev_n) problems += 1;
            const is_free = step.word.kind == .free;
            if (is_free and prev_free) problems += 1;
            if (is_free) {
                free_granules += step.word.granules;
                free_runs += 1;
                if (!a.on_its_list(step.start, step.word.granules)) problems += 1;
            }
            prev_free = is_free;
            prev_n = step.word.granules;
        }
        if (free_granules != a.index.free_granules) problems += 1;
        if (free_runs != a.index.free_runs) problems += 1;
        problems += a.check_lists(free_runs);
        return problems;
    }

    fn on_its_list(a: Arena, s: u32, granules: u32) bool {
        const c = class_of(granules);
        var i = a.index.heads[c.fl][c.sl];
        var n: u64 = 0;
        while (i != nil and n <= a.index.free_runs) : (n += 1) {
            if (i == s) return true;
            if (i >= a.granules) return false;
            i = a.run(i).link_next;
        }
        return false;
    }

    /// Bitmaps agree with the lists, and the lists hold free_runs runs.
    fn check_lists(a: Arena, free_runs: u64) u32 {
        var problems: u32 = 0;
        var total: u64 = 0;
        for (0..fl_count) |fl| {
            for (0..sl_count) |sl| {
                const head = a.index.heads[fl][sl];
                const bit = a.index.sl_bitmaps[fl] & (@as(u8, 1) << @intCast(sl)) != 0;
                if (bit != (head != nil)) problems += 1;
                var i = head;
                while (i != nil and total <= free_runs) : (total += 1) {
                    if (i >= a.granules) return problems + 1;
                    const c = class_of(a.word(i).granules);
                    if (c.fl != fl or c.sl != sl) problems += 1;
                    i = a.run(i).link_next;
                }
            }
            const fl_bit = a.index.fl_bitmap & (@as(u32, 1) << @intCast(fl)) != 0;
            if (fl_bit != (a.index.sl_bitmaps[fl] != 0)) problems += 1;
        }
        if (total != free_runs) problems += 1;
        return problems;
    }
};

const testing = std.testing;

const TestArena = struct {
    bytes: []align(64) u8,
    index: Index,

    fn init(granules: u32) !*TestArena {
        const t = try testing.allocator.create(TestArena);
        t.bytes = try testing.allocator.alignedAlloc(u8, .fromByteUnits(64), @as(usize, granules) * granule_bytes);
        @memset(t.bytes, 0);
        t.arena().reset();
        return t;
    }

    fn arena(t: *TestArena) Arena {
        return .{ .bytes = t.bytes, .granules = @intCast(t.bytes.len / granule_bytes), .index = &t.index };
    }

    fn deinit(t: *TestArena) void {
        testing.allocator.free(t.bytes);
        testing.allocator.destroy(t);
    }
};

test "class math: every size has one class, classes grow with the size, and every run of a higher class fits" {
    var prev: Class = class_of(1);
    var n: u32 = 1;
    while (n <= 1 << 20) : (n += 1) {
        const c = class_of(n);
        const key = @as(u32, c.fl) * 4 + c.sl;
        const prev_key = @as(u32, prev.fl) * 4 + prev.sl;
        try testing.expect(key >= prev_key);
        prev = c;
    }
    try testing.expectEqual(Class{ .fl = 0, .sl = 0 }, class_of(1));
    try testing.expectEqual(Class{ .fl = 1, .sl = 1 }, class_of(3));
    try testing.expectEqual(Class{ .fl = 2, .sl = 3 }, class_of(7));
    try testing.expectEqual(Class{ .fl = 31, .sl = 3 }, class_of(granules_max));
}

test "run words: round trip, and anything else from the file is invalid" {
    const w = word_parse(word_make(.live, 514));
    try testing.expectEqual(Kind.live, w.kind);
    try testing.expectEqual(@as(u32, 514), w.granules);
    try testing.expectEqual(Kind.invalid, word_parse(0).kind);
    try testing.expectEqual(Kind.invalid, word_parse(word_make(.free, 3) ^ (1 << 20)).kind);
    try testing.expectEqual(Kind.invalid, word_parse(word_make(.free, 3) & 0xffff_ffff).kind);
    try testing.expectEqual(Kind.invalid, word_parse((word_make(.free, 3) & ~@as(u64, 0xff)) | 0x11).kind);
    try testing.expectEqual(@as(u64, 3), entry_granules(25, 100));
    try testing.expectEqual(@as(u64, 34), entry_granules(25, 2048));
    try testing.expectEqual(@as(u64, 514), entry_granules(25, 32768));
}

test "take and release against a model: the walk tiles the arena, free runs never touch, lists match" {
    const total: u32 = 4096;
    const t = try TestArena.init(total);
    defer t.deinit();
    const a = t.arena();
    try testing.expectEqual(@as(u32, 0), a.check());
    var owned: [total]u8 = @splat(0); // 1 = granule in a taken run
    var runs = std.ArrayList(struct { s: u32, g: u32 }).empty;
    defer runs.deinit(testing.allocator);
    var prng = std.Random.DefaultPrng.init(7);
    const rand = prng.random();
    var op: u32 = 0;
    while (op < 100_000) : (op += 1) {
        if (runs.items.len > 0 and (rand.boolean() or runs.items.len > 200)) {
            const k = rand.uintLessThan(usize, runs.items.len);
            const r = runs.swapRemove(k);
            a.store_word(r.s, .live, r.g);
            _ = try a.release(r.s);
            @memset(owned[r.s..][0..r.g], 0);
        } else {
            const g = 1 + rand.uintLessThan(u32, if (rand.uintLessThan(u32, 8) == 0) 300 else 12);
            const found = try a.find(g);
            if (found) |s| {
                try a.take(s, g);
                try testing.expectEqual(Kind.writing, a.word(s).kind);
                for (owned[s..][0..g]) |o| try testing.expectEqual(@as(u8, 0), o);
                @memset(owned[s..][0..g], 1);
                try runs.append(testing.allocator, .{ .s = s, .g = g });
            } else {
                // No fitting run found: then every free run (a maximal gap,
                // since free runs never touch) that fits is of g's own
                // class, past the 8 that find looks at; none of a higher one.
                var i: u32 = 0;
                var gap: u32 = 0;
                while (i <= total) : (i += 1) {
                    if (i < total and owned[i] == 0) {
                        gap += 1;
                        continue;
                    }
                    if (gap >= g) try testing.expectEqual(class_of(g), class_of(gap));
                    gap = 0;
                }
            }
        }
        if (op % 997 == 0) try testing.expectEqual(@as(u32, 0), a.check());
    }
    for (runs.items) |r| {
        a.store_word(r.s, .live, r.g);
        _ = try a.release(r.s);
    }
    try testing.expectEqual(@as(u32, 0), a.check());
    // Everything merged back into one free run.
    try testing.expectEqual(@as(u64, 1), t.index.free_runs);
    try testing.expectEqual(@as(u64, total), t.index.free_granules);
}

test "a hostile run word stops the walk with Corrupt" {
    const t = try TestArena.init(64);
    defer t.deinit();
    const a = t.arena();
    try a.take(0, 4);
    @atomicStore(u64, &a.run(4).run, word_make(.free, 1000), .monotonic);
    var w = a.walk();
    _ = try w.next();
    try testing.expectError(error.Corrupt, w.next());
    @atomicStore(u64, &a.run(4).run, 0, .monotonic);
    w = a.walk();
    _ = try w.next();
    try testing.expectError(error.Corrupt, w.next());
}
