//! Status codes of the C ABI. The TypeScript side turns each into an
//! exception in exactly one place (`lib/errors.ts`); keep the two in step.

/// Every exported function that can fail returns one of these (negated where
/// a non-negative result carries data, as `shmc_lookup` does with lengths).
pub const Status = enum(c_int) {
    ok = 0,
    /// The key is not present (or expired). Not an error.
    miss = 1,
    /// An argument is out of its documented range; the message names it.
    invalid_argument = 2,
    /// A key or value exceeds the limits the region was created with.
    too_large = 3,
    /// The writer lock (or the creation lock) stayed with a live owner
    /// beyond the handle's bound. Nothing was changed.
    lock_timeout = 4,
    /// This handle already holds the writer lock (re-entry would deadlock).
    lock_held = 5,
    /// The shared file does not hold a valid region.
    corrupt = 6,
    /// The region exists with other geometry, TTL or format.
    mismatch = 7,
    /// The directory is a symlink, foreign-owned or group/other accessible.
    unsafe_dir = 8,
    /// A system call failed; the message names it and errno.
    io = 9,
    /// The file system has no room for the region.
    no_space = 10,
    /// Every liveness slot of the cache is held by an open handle.
    too_many_handles = 11,
    /// `unlock` without `lock`.
    not_locked = 12,
    /// Out of process memory.
    out_of_memory = 13,
    /// The handle was opened before this process forked from its parent:
    /// its liveness slot and lock belong to the parent. Reopen in the child.
    forked = 14,
    /// The key's probe run in the table has no room (keys that hash alike
    /// crowd it); the write was refused and nothing changed.
    full = 15,
    /// The cache (or its directory) does not exist, and the caller gave no
    /// geometry to create it with (attach, inspect, destroy's quiet case).
    not_found = 16,
    /// The handle's region is no longer the cache's: it was destroyed or
    /// replaced (Header.retired), or its file was removed or replaced by
    /// anything else (watch.zig). Nothing was read or written; reopen the
    /// cache by name (lib/cache.ts does, and retries the operation once).
    retired = 17,
};

pub fn code(status: Status) c_int {
    return @backingInt(status);
}
