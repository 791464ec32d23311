import Foundation
import KlingAPI
import KlingCore
import KlingPostgres
import KlingSQLite
import KlingTestSupport
import Logging
import Synchronization
import Testing

/// Task records: ownership, idempotency, external ids, lists and cancels (``TaskRecordStore``).
extension TaskStoreBehaviourTests {
    @Test func tasksAreVisibleOnlyToTheirOwner() async throws {
        try await withStores { store in
            let alice = try await store.createAccount(name: "alice", credits: 0, now: 1)
            let bob = try await store.createAccount(name: "bob", credits: 0, now: 1)
            try await queuedTask(store, account: alice, id: "t1", createdAt: 10)
            #expect(try await store.task(id: "t1", accountID: alice.id)?.request.prompt == "p")
            #expect(try await store.task(id: "t1", accountID: bob.id) == nil)
        }
    }

    @Test func idempotencyKeysReturnTheEarlierTaskForADayAndRefuseOtherRequests() async throws {
        try await withStores { store in
            let alice = try await store.createAccount(name: "alice", credits: 100, now: 1)
            let bob = try await store.createAccount(name: "bob", credits: 100, now: 1)
            let day: Int64 = 86_400_000
            func insert(_ account: Account, _ id: String, fingerprint: String = "f", now: Int64 = 1000) async throws -> IdempotentInsert {
                try await store.insert(
                    task(account, id: id, credits: 10), maxActiveTasks: nil, idempotencyKey: "k", fingerprint: fingerprint, now: now)
            }
            #expect(try await insert(alice, "t1") == .created)
            #expect(try await insert(alice, "t2") == .existing(taskID: "t1"))
            #expect(try await store.task(id: "t2") == nil)
            #expect(try await store.balance(accountID: alice.id) == 90)
            await #expect(throws: StoreError.self) { _ = try await insert(alice, "t3", fingerprint: "other") }
            #expect(try await insert(bob, "b1") == .created)
            #expect(try await insert(alice, "t4", now: 1000 + day + 1) == .created)
            #expect(try await store.balance(accountID: alice.id) == 80)
            #expect(try await store.ledgerMismatches().isEmpty)
        }
    }

    @Test func externalIDsAreUniquePerAccount() async throws {
        try await withStores { store in
            let alice = try await store.createAccount(name: "alice", credits: 0, now: 1)
            let bob = try await store.createAccount(name: "bob", credits: 0, now: 1)
            try await store.insert(task(alice, id: "a1", externalID: "e"), maxActiveTasks: nil)
            do {
                try await store.insert(task(alice, id: "a2", externalID: "e"), maxActiveTasks: nil)
                Issue.record("a second task with one external id was stored")
            } catch let error as StoreError {
                #expect(error.isExternalIDTaken)
            }
            try await store.insert(task(bob, id: "b1", externalID: "e"), maxActiveTasks: nil)
            #expect(try await store.task(externalID: "e", accountID: alice.id)?.id == "a1")
            #expect(try await store.task(externalID: "e", accountID: bob.id)?.id == "b1")
            #expect(try await store.task(externalID: "x", accountID: alice.id) == nil)
        }
    }

    @Test func listsPageNewestOrOldestFirstWithinTheAccount() async throws {
        try await withStores { store in
            let alice = try await store.createAccount(name: "alice", credits: 0, now: 1)
            let bob = try await store.createAccount(name: "bob", credits: 0, now: 1)
            for index in 1...5 { try await queuedTask(store, account: alice, id: "t\(index)", createdAt: Int64(index)) }
            func ids(limit: Int, after: String? = nil, ascending: Bool = false, offset: Int = 0) async throws -> ([String], Bool) {
                let page = try await store.listTasks(accountID: alice.id, limit: limit, after: after, ascending: ascending, offset: offset)
                return (page.tasks.map(\.id), page.hasMore)
            }
            #expect(try await ids(limit: 2) == (["t5", "t4"], true))
            #expect(try await ids(limit: 2, after: "t4") == (["t3", "t2"], true))
            #expect(try await ids(limit: 2, after: "t2") == (["t1"], false))
            #expect(try await ids(limit: 10, after: "t2", ascending: true) == (["t3", "t4", "t5"], false))
            #expect(try await ids(limit: 2, offset: 1) == (["t4", "t3"], true))
            await #expect(throws: StoreError.self) { _ = try await ids(limit: 2, after: "nope") }
            #expect(try await store.listTasks(accountID: bob.id, limit: 10, after: nil, ascending: false, offset: 0).tasks.isEmpty)
        }
    }

    @Test func cancellingRefundsOnceAndQueuesTheCallback() async throws {
        try await withStores { store in
            let alice = try await store.createAccount(name: "alice", credits: 100, now: 1)
            let bob = try await store.createAccount(name: "bob", credits: 0, now: 1)
            try await store.insert(task(alice, id: "t", credits: 30, callbackURL: "https://example.com/hook"), maxActiveTasks: nil)
            let failure = TaskFailure(code: 499, message: "cancelled")
            #expect(try await store.cancel(taskID: "t", accountID: bob.id, failure: failure, now: 5) == .notFound)
            #expect(try await store.cancel(taskID: "t", accountID: alice.id, failure: failure, now: 5) == .cancelled)
            #expect(try await store.cancel(taskID: "t", accountID: alice.id, failure: failure, now: 6) == .alreadyFinished)
            let cancelled = try #require(try await store.task(id: "t"))
            #expect(cancelled.state == .failed && cancelled.failure == failure && cancelled.refundedCredits == 30)
            #expect(try await store.balance(accountID: alice.id) == 100)
            let callbacks = try await store.callbacks(taskID: "t", accountID: alice.id)
            #expect(callbacks.map(\.0.url) == ["https://example.com/hook"])
            #expect(try await store.callbacks(taskID: "t", accountID: bob.id).isEmpty)
        }
    }

    /// Hundreds of readers at once, hot-path reads (a task by id, a key) among paged and callback reads, on a machine
    /// whose concurrency pool has as few threads as cores: every read finishes (a synchronous read must never wait
    /// for a connection that a suspended asynchronous read holds).
    @Test(.timeLimit(.minutes(1))) func manyConcurrentReadsOfEveryKindAllFinish() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "readers", credits: 0, now: 1)
            for index in 0..<20 { try await queuedTask(store, account: account, id: "r\(index)", createdAt: Int64(index)) }
            let finished = try await withThrowingTaskGroup(of: Int.self) { group in
                for reader in 0..<300 {
                    group.addTask {
                        for round in 0..<5 {
                            let id = "r\((reader + round) % 20)"
                            _ = try await store.task(id: id)
                            _ = try await store.listTasks(accountID: account.id, limit: 5, after: nil, ascending: reader % 2 == 0, offset: 0)
                            _ = try await store.account(forKeyHash: "no-such-key-\(reader)")
                            _ = try await store.callbacks(taskID: id, accountID: account.id)
                            _ = try await store.upstreamTask(taskID: id)
                        }
                        return 1
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(finished == 300)
        }
    }
}
