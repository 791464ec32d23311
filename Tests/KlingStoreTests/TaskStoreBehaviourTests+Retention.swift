import Foundation
import KlingAPI
import KlingCore
import KlingPostgres
import KlingSQLite
import KlingTestSupport
import Logging
import Synchronization
import Testing

/// Result retention (``RetentionStore``).
extension TaskStoreBehaviourTests {
    @Test func retentionFindsOldResultsOnceAndRecordsTheirExpiry() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 0, now: 1)
            try await queuedTask(store, account: account, id: "t", createdAt: 1)
            try await queuedTask(store, account: account, id: "q", createdAt: 2)
            _ = try await store.claimNext(worker: "w", engine: "preview", now: 2, leaseUntil: 100, maxAttempts: 3)
            #expect(try await store.complete(taskID: "t", attempt: 1, result: Self.result, now: 10))
            #expect(try await store.tasksWithResults(completedBefore: 10, limit: 10).isEmpty)
            #expect(try await store.tasksWithResults(completedBefore: 11, limit: 10) == ["t"])
            try await store.markResultsExpired(taskIDs: ["t"], now: 20)
            #expect(try await store.task(id: "t")?.resultsExpiredAt == 20)
            #expect(try await store.tasksWithResults(completedBefore: 11, limit: 10).isEmpty)
            let stats = try await store.operationalStats(now: 4002)
            #expect(stats.oldestQueuedSeconds == 4)
            #expect(stats.tasksByState == [.succeeded: 1, .queued: 1])
        }
    }
}
