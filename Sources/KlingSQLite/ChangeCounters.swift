import Atomics
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Counters in a small memory-mapped file next to the database, bumped after every committed write, so every process
/// on the same database (the server, admin commands, a second server) learns in nanoseconds whether a row it cached
/// may have changed.
///
/// Slot 0 counts changes to accounts, keys, limits and switches; slot 1 counts bulk task changes; every other slot counts changes to the
/// tasks whose id hashes to it. A reader loads the counters before reading the database and keeps the values with
/// what it read; the cached copy is current while the counters are unchanged. Writers bump after their commit, so a
/// reader can only keep a row that is older than the counters say for the moment between a commit and its bump.
final class ChangeCounters: @unchecked Sendable {
    /// Counter slots (a power of two); 8 bytes each.
    static let slotCount = 4096
    static let controlSlot = 0
    static let allTasksSlot = 1

    private let base: UnsafeMutableRawPointer
    private let length: Int

    /// Maps `path`, creating it zero-filled (all counters 0) when missing.
    init(path: String) throws {
        length = Self.slotCount * MemoryLayout<UInt64>.stride
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw Self.error("open", path) }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw Self.error("stat", path) }
        if Int(info.st_size) < length, ftruncate(descriptor, off_t(length)) != 0 { throw Self.error("resize", path) }
        guard let mapped = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0), mapped != MAP_FAILED else {
            throw Self.error("map", path)
        }
        base = mapped
    }

    deinit {
        munmap(base, length)
    }

    /// The slot counting changes to task `id`.
    static func slot(forTask id: String) -> Int {
        // FNV-1a: stable across processes (Swift's Hasher is seeded per process).
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in id.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return 2 + Int(hash % UInt64(slotCount - 2))
    }

    /// The current value of a slot.
    func value(_ slot: Int) -> UInt64 {
        counter(slot).load(ordering: .acquiring)
    }

    /// Marks everything counted by `slot` as changed.
    func bump(_ slot: Int) {
        counter(slot).wrappingIncrement(ordering: .releasing)
    }

    private func counter(_ slot: Int) -> UnsafeAtomic<UInt64> {
        UnsafeAtomic(at: (base + slot * MemoryLayout<UInt64>.stride).assumingMemoryBound(to: UInt64.AtomicRepresentation.self))
    }

    private static func error(_ operation: String, _ path: String) -> CocoaError {
        CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path, NSLocalizedDescriptionKey: "\(operation) failed: errno \(errno)"])
    }
}
