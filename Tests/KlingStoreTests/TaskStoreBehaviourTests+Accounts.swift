import Foundation
import KlingAPI
import KlingCore
import KlingPostgres
import KlingSQLite
import KlingTestSupport
import Logging
import Synchronization
import Testing

/// Accounts and keys, and what every handle sees of them (``AccountStore``).
extension TaskStoreBehaviourTests {
    @Test func accountNamesAreUnique() async throws {
        try await withStores { store in
            _ = try await store.createAccount(name: "a", credits: 0, now: 1)
            await #expect(throws: StoreError.self) { _ = try await store.createAccount(name: "a", credits: 0, now: 2) }
        }
    }

    @Test func keysResolveToTheirAccountAndRevokedOrUnknownKeysDoNot() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 0, now: 1)
            try await store.addAPIKey(APIKeyRecord(id: "k1", accountID: account.id, hash: APIKeys.hash("secret"), prefix: "sec", createdAt: 1))
            try await store.addAPIKey(
                APIKeyRecord(id: "k2", accountID: account.id, hash: APIKeys.hash("old"), prefix: "old", createdAt: 1, revokedAt: 2))
            #expect(try await store.account(forKeyHash: APIKeys.hash("secret"))?.id == account.id)
            #expect(try await store.account(forKeyHash: APIKeys.hash("old")) == nil)
            #expect(try await store.account(forKeyHash: APIKeys.hash("nope")) == nil)
        }
    }

    @Test func revokedKeyStopsAuthenticatingAtOnce() async throws {
        try await withStores { store in
            let alice = try await store.createAccount(name: "alice", credits: 0, now: 1)
            let bob = try await store.createAccount(name: "bob", credits: 0, now: 1)
            let hash = APIKeys.hash("secret")
            try await store.addAPIKey(APIKeyRecord(id: "k1", accountID: alice.id, hash: hash, prefix: "sec", createdAt: 1))
            #expect(try await store.account(forKeyHash: hash)?.id == alice.id)
            #expect(try await store.revokeAPIKey(id: "k1", accountID: bob.id, now: 2) == false)
            #expect(try await store.account(forKeyHash: hash)?.id == alice.id)
            #expect(try await store.revokeAPIKey(id: "k1", accountID: alice.id, now: 3))
            #expect(try await store.account(forKeyHash: hash) == nil)
            #expect(try await store.revokeAPIKey(id: "k1", accountID: alice.id, now: 4) == false)
            #expect(try await store.apiKeys(accountID: alice.id).first?.revokedAt == 3)
        }
    }

    /// Reads are cached per process; a write through any other handle (another process) must show at once.
    @Test func everyHandleSeesAnotherHandlesWritesAtOnce() async throws {
        try await withBackends { backend in
            let reader = try await backend.open()
            let writer = try await backend.open()
            let account = try await writer.createAccount(name: "a", credits: 0, now: 1)
            let hash = APIKeys.hash("k")
            try await writer.addAPIKey(APIKeyRecord(id: "k", accountID: account.id, hash: hash, prefix: "k", createdAt: 1))
            for index in 0..<3 { try await queuedTask(writer, account: account, id: "t\(index)", createdAt: Int64(index)) }

            func readState(_ id: String) async throws -> TaskRecord? {
                // Twice: the first read may fill the cache, the second must still be current.
                _ = try await reader.task(id: id, accountID: account.id)
                return try await reader.task(id: id, accountID: account.id)
            }
            #expect(try await reader.account(forKeyHash: hash)?.id == account.id)
            #expect(try await readState("t0")?.state == .queued)

            _ = try await writer.claimNext(worker: "w", engine: "preview", now: 2, leaseUntil: 10, maxAttempts: 1)
            #expect(try await readState("t0")?.state == .running)
            _ = try await writer.updateProgress(taskID: "t0", attempt: 1, progress: 40, now: 3)
            #expect(try await readState("t0")?.progress == 40)
            _ = try await writer.complete(taskID: "t0", attempt: 1, result: Self.result, now: 4)
            #expect(try await readState("t0")?.state == .succeeded)

            _ = try await writer.claimNext(worker: "w", engine: "preview", now: 5, leaseUntil: 10, maxAttempts: 1)
            #expect(try await readState("t1")?.state == .running)
            _ = try await writer.fail(taskID: "t1", attempt: 1, failure: TaskFailure(code: 501, message: "x"), now: 6)
            #expect(try await readState("t1")?.failure?.code == 501)

            // A bulk change (abandoned claims failed in one statement) reaches cached copies too.
            _ = try await writer.claimNext(worker: "w", engine: "preview", now: 7, leaseUntil: 10, maxAttempts: 1)
            #expect(try await readState("t2")?.state == .running)
            #expect(try await writer.failAbandoned(now: 11, maxAttempts: 1) == 1)
            #expect(try await readState("t2")?.state == .failed)

            // Key lookups and switches are the per-request reads a PostgreSQL handle keeps while changes are announced
            // to it: another process's change shows as soon as its notification arrives (SQLite: at once).
            #expect(try await reader.account(forKeyHash: hash)?.id == account.id)
            #expect(try await reader.switches().maintenance == false)
            #expect(try await writer.revokeAPIKey(id: "k", accountID: account.id, now: 12))
            try await writer.setMaintenance(true)
            #expect(try await soon(reader) { try await reader.account(forKeyHash: hash) == nil })
            #expect(try await soon(reader) { try await reader.switches().maintenance })
        }
    }

    @Test func ownChangesToKeysLimitsAndSwitchesShowAtOnceThroughTheSameHandle() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 0, now: 1)
            let hash = APIKeys.hash("k")
            try await store.addAPIKey(APIKeyRecord(id: "k", accountID: account.id, hash: hash, prefix: "k", createdAt: 1))
            for _ in 0..<2 { #expect(try await store.account(forKeyHash: hash)?.limits == LimitOverrides()) }
            try await store.setLimits(accountID: account.id, limits: LimitOverrides(maxActiveTasks: 3))
            #expect(try await store.account(forKeyHash: hash)?.limits.maxActiveTasks == 3)
            for _ in 0..<2 { #expect(try await store.switches().disabledFeatures.isEmpty) }
            try await store.setFeature(.fourK, enabled: false)
            #expect(try await store.switches().disabledFeatures == [.fourK])
        }
    }
}
