//! The cross-process writer lock.
//!
//! The lock word (Header.lock_word, u64) is
//!   bits  0..21  owner PID (diagnostics only; PIDs are never trusted)
//!   bits 22..33  owner liveness slot (liveness.zig); 0 = free
//!   bits 34..63  generation, incremented by every acquisition
//!
//! Invariants and why they hold:
//! - Mutual exclusion. The lock changes hands only by CAS. A normal
//!   acquisition CASes a free word (slot 0) to an owned one; a recovery CASes
//!   the exact owned word it observed to an owned one. Every acquisition
//!   bumps the generation, so a word once released can never be equal to a
//!   word observed before it was released (unless 2^30 acquisitions happen
//!   between a recoverer's load and its CAS): the recovery CAS fails if the
//!   dead owner's word was replaced in between. That closes the ABA window
//!   of PID-based schemes (probe, PID reuse, CAS succeeding on a new owner).
//! - Death detection. A recoverer takes over only after it observed the
//!   owner's slot byte unlocked in the lock file, which the kernel does only
//!   once every descriptor of the owner's handle is closed: its process is
//!   dead (zombies included) or the handle was closed (close releases the
//!   writer lock before the slot). Slots are kernel objects, so PID reuse and
//!   PID namespaces do not matter. A slot can be reclaimed by a new handle
//!   after its owner died; the recoverer's CAS is keyed on the full word, so
//!   it still recovers the dead owner's acquisition and not the new handle's.
//!   If the recoverer's probe raced with a new handle taking that slot and
//!   the probe answered "alive", it merely waits; never the reverse.
//! - A handle whose own slot appears in the word without `lock_held` is
//!   looking at a dead predecessor that held the same slot (a live handle
//!   holding our slot is impossible, we hold its byte lock): recover at once.
//!   The one exception, a child of fork() that inherited the parent's open
//!   file description and so its slot, is refused before any of this
//!   (sys.fork_epoch).
//! - Bounded waiting. Every wait loop checks a deadline on CLOCK_MONOTONIC;
//!   it spins briefly, then yields, then sleeps with exponential backoff up
//!   to 1 ms, so a stopped owner costs waiters little CPU.
//!
//! A waiter that recovers must repair the structure when seq is odd (the
//! dead owner was mid-mutation): `acquire` reports that and write.zig
//! rebuilds before anything else runs under the lock.

const std = @import("std");
const assert = std.debug.assert;
const region = @import("region.zig");
const liveness = @import("liveness.zig");
const sys = @import("sys.zig");
const Handle = @import("handle.zig").Handle;

const pid_bits = 22;
const slot_bits = 12;
const pid_mask: u64 = (1 << pid_bits) - 1;
const slot_mask: u64 = (1 << slot_bits) - 1;

comptime {
    assert(liveness.slots_max == slot_mask);
}

pub fn word_make(generation: u64, slot: u32, pid: u32) u64 {
    assert(slot <= liveness.slots_max);
    const gen = generation & ((1 << (64 - pid_bits - slot_bits)) - 1);
    return (gen << (pid_bits + slot_bits)) | (@as(u64, slot) << pid_bits) | (pid & pid_mask);
}

pub fn word_slot(word: u64) u32 {
    return @intCast((word >> pid_bits) & slot_mask);
}

pub fn word_pid(word: u64) u32 {
    return @intCast(word & pid_mask);
}

pub fn word_generation(word: u64) u64 {
    return word >> (pid_bits + slot_bits);
}

/// Spin, then yield, then sleep with doubling naps. The phase lengths keep
/// an uncontended hand-over (a writer's critical section is microseconds)
/// in the spinning phase and a long wait off the CPU.
pub const Backoff = struct {
    step: u32 = 0,
    nap_ns: u64 = 20 * std.time.ns_per_us,

    const spins = 64;
    const yields = spins + 16;
    const nap_ns_max = std.time.ns_per_ms;

    pub fn wait(b: *Backoff) void {
        b.step +|= 1;
        if (b.step <= spins) {
            std.atomic.spinLoopHint();
        } else if (b.step <= yields) {
            sys.yield();
        } else {
            sys.sleep_ns(b.nap_ns);
            b.nap_ns = @min(b.nap_ns * 2, nap_ns_max);
        }
    }

    /// Probing liveness costs a system call; do it once spinning is over.
    pub fn probing(b: *const Backoff) bool {
        return b.step >= spins;
    }
};

pub const Acquired = enum { free, recovered };

pub const AcquireError = error{ Timeout, Held, Forked };

/// Takes the writer lock for `h`, waiting at most until `deadline_ns`.
pub fn acquire(h: *Handle, deadline_ns: u64) AcquireError!Acquired {
    if (h.lock_held) return error.Held;
    // A child of fork() shares the parent's liveness slot (the open file
    // description is inherited): it could neither be told apart from the
    // parent by the probe nor by the own-slot shortcut below. Refuse.
    if (h.fork_epoch != sys.fork_epoch) return error.Forked;
    const header = h.header();
    var backoff: Backoff = .{};
    // Bound: the loop exits by the deadline check below; every iteration
    // either returns, or waits in backoff, which makes time pass.
    while (true) {
        // Monotonic: the CAS below carries the ordering that matters.
        const word = @atomicLoad(u64, &header.lock_word, .monotonic);
        const owner = word_slot(word);
        if (owner == 0 or owner == h.live_slot or
            (backoff.probing() and !liveness.is_alive(h.fd, owner)))
        {
            const next = word_make(word_generation(word) +% 1, h.live_slot, h.pid);
            // Acquire on success: everything the previous owner wrote before
            // its Release of the lock (or before it died, for a recovery) is
            // visible in our critical section.
            if (@cmpxchgStrong(u64, &header.lock_word, word, next, .acquire, .monotonic) == null) {
                h.lock_word = next;
                h.lock_held = true;
                if (owner == 0) return .free;
                h.recoveries += 1;
                return .recovered;
            }
            continue;
        }
        if (backoff.probing() and sys.now_ns() >= deadline_ns) return error.Timeout;
        backoff.wait();
    }
}

/// Releases the lock `h` holds. Caller made seq even.
pub fn release(h: *Handle) void {
    assert(h.lock_held);
    const header = h.header();
    assert(@atomicLoad(u64, &header.seq, .monotonic) & 1 == 0);
    const free = word_make(word_generation(h.lock_word), 0, 0);
    // Release: all writes of the critical section happen-before the next
    // owner's Acquire CAS. A CAS rather than a store: if the word is not
    // ours (only a corrupted file can do that) we must not free someone
    // else's lock.
    _ = @cmpxchgStrong(u64, &header.lock_word, h.lock_word, free, .release, .monotonic);
    h.lock_held = false;
    h.lock_word = 0;
}

/// Test support: forget the lock as a dying owner would, leaving the word
/// and seq as they are (the next acquirer recovers through its own slot).
pub fn release_for_test(h: *Handle) void {
    assert(h.lock_held);
    h.lock_held = false;
    h.lock_word = 0;
}

/// The PID recorded by the current owner, 0 when free.
pub fn owner_pid(h: *const Handle) u32 {
    const word = @atomicLoad(u64, &h.header().lock_word, .monotonic);
    if (word_slot(word) == 0) return 0;
    return word_pid(word);
}

test "lock word fields round-trip" {
    const w = word_make(12345, 4095, 4194303);
    try std.testing.expectEqual(@as(u32, 4095), word_slot(w));
    try std.testing.expectEqual(@as(u32, 4194303), word_pid(w));
    try std.testing.expectEqual(@as(u64, 12345), word_generation(w));
    const wrapped = word_make((1 << 30), 1, 1);
    try std.testing.expectEqual(@as(u64, 0), word_generation(wrapped));
}

const testing = std.testing;
const TestMemory = @import("test_region.zig").Memory;
const scratch_fds = @import("test_region.zig").scratch_fds;

/// The bound of an acquire that a test expects to succeed at once: far
/// beyond any stall, yet finite, so that a broken lock fails the test with
/// error.Timeout instead of hanging it.
fn soon() u64 {
    return sys.now_ns() + 10 * std.time.ns_per_s;
}

test "acquire takes a free lock, bumps the generation, and release frees it keeping the generation" {
    const m = try TestMemory.init(4);
    defer m.deinit();
    const h = &m.handle;
    const header = h.header();
    const gen0 = word_generation(header.lock_word);
    try testing.expectEqual(Acquired.free, try acquire(h, soon()));
    try testing.expect(h.lock_held);
    try testing.expectEqual(h.live_slot, word_slot(header.lock_word));
    try testing.expectEqual(h.pid, word_pid(header.lock_word));
    try testing.expectEqual(gen0 + 1, word_generation(header.lock_word));
    try testing.expectError(error.Held, acquire(h, soon()));
    release(h);
    try testing.expect(!h.lock_held);
    try testing.expectEqual(@as(u32, 0), word_slot(header.lock_word));
    try testing.expectEqual(gen0 + 1, word_generation(header.lock_word));
    try testing.expectEqual(Acquired.free, try acquire(h, soon()));
    try testing.expectEqual(gen0 + 2, word_generation(header.lock_word));
    release(h);
}

test "a live owner keeps the lock: another handle times out instead of taking it" {
    const m = try TestMemory.init(4);
    defer m.deinit();
    const fds = try scratch_fds(2);
    defer for (fds) |fd| sys.close(fd);
    const slot_a = (try liveness.claim(fds[0], 0)).slot;
    const slot_b = (try liveness.claim(fds[1], slot_a)).slot;
    var a = m.other(slot_a, fds[0]);
    var b = m.other(slot_b, fds[1]);
    _ = try acquire(&a, soon());
    // The bound is what is tested: b must give up, whatever the time taken.
    try testing.expectError(error.Timeout, acquire(&b, sys.now_ns() + 20 * std.time.ns_per_ms));
    try testing.expectEqual(slot_a, word_slot(a.header().lock_word));
    release(&a);
    try testing.expectEqual(Acquired.free, try acquire(&b, soon()));
    release(&b);
}

test "a dead owner's lock is recovered once its liveness slot is unlocked, with a new generation" {
    const m = try TestMemory.init(4);
    defer m.deinit();
    const fds = try scratch_fds(3);
    defer for (fds[1..]) |fd| sys.close(fd);
    const slot_a = (try liveness.claim(fds[0], 0)).slot;
    const slot_b = (try liveness.claim(fds[1], slot_a)).slot;
    var a = m.other(slot_a, fds[0]);
    var b = m.other(slot_b, fds[1]);
    _ = try acquire(&a, soon());
    const dead_word = a.header().lock_word;
    // a dies holding the lock: its descriptor closes, the kernel unlocks
    // its slot byte, and the word still names it.
    release_for_test(&a);
    sys.close(fds[0]);
    try testing.expect(!liveness.is_alive(fds[2], slot_a));
    try testing.expectEqual(Acquired.recovered, try acquire(&b, sys.now_ns() + 10 * std.time.ns_per_s));
    try testing.expectEqual(@as(u64, 1), b.recoveries);
    try testing.expectEqual(slot_b, word_slot(b.header().lock_word));
    try testing.expectEqual(word_generation(dead_word) + 1, word_generation(b.header().lock_word));
    release(&b);
}

test "a handle finding its own slot in the word (a dead predecessor's) recovers at once" {
    const m = try TestMemory.init(4);
    defer m.deinit();
    const h = &m.handle;
    _ = try acquire(h, soon());
    release_for_test(h);
    // No liveness probe is needed (fd -1 would answer "alive"): the slot is ours.
    try testing.expectEqual(Acquired.recovered, try acquire(h, sys.now_ns() + std.time.ns_per_s));
    release(h);
}

test "ABA: a recoverer's stale view of a dead owner's word cannot take a later owner's lock" {
    // The recoverer loads the dead owner's word W, then is delayed. Meanwhile
    // another handle recovers and releases, and a new handle that reused the
    // dead owner's slot (same PID after reuse, say) takes the lock. Without
    // the generation, its word would equal W and the late CAS would succeed,
    // putting two writers in the critical section.
    const m = try TestMemory.init(4);
    defer m.deinit();
    const h = &m.handle;
    const header = h.header();
    _ = try acquire(h, soon());
    const observed = header.lock_word;
    release_for_test(h);
    var rescuer = m.other(h.live_slot + 1, -1);
    rescuer.live_slot = h.live_slot; // recovers through the own-slot shortcut
    try testing.expectEqual(Acquired.recovered, try acquire(&rescuer, soon()));
    release(&rescuer);
    _ = try acquire(h, soon()); // same slot, same PID as the dead owner
    try testing.expect(header.lock_word != observed);
    const late = word_make(word_generation(observed) +% 1, 7, 7);
    try testing.expect(@cmpxchgStrong(u64, &header.lock_word, observed, late, .acquire, .monotonic) != null);
    try testing.expectEqual(h.lock_word, header.lock_word);
    release(h);
}

test "acquire refuses a handle inherited through fork" {
    const m = try TestMemory.init(4);
    defer m.deinit();
    var h = m.handle;
    h.fork_epoch = sys.fork_epoch +% 1;
    try testing.expectError(error.Forked, acquire(&h, soon()));
    try testing.expectEqual(@as(u32, 0), word_slot(h.header().lock_word));
}
