import Foundation
import KlingAPI
import KlingCore
import KlingPostgres
import KlingSQLite
import KlingTestSupport
import Logging
import Synchronization
import Testing

/// The queue: claims, fencing, leases, announcements and workers of several processes (``QueueStore``).
extension TaskStoreBehaviourTests {
    @Test func claimsOldestFirstAndFencesStaleClaims() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 0, now: 1)
            try await queuedTask(store, account: account, id: "late", createdAt: 20)
            try await queuedTask(store, account: account, id: "early", createdAt: 10)
            let first = try #require(try await store.claimNext(worker: "w1", engine: "preview", now: 100, leaseUntil: 200, maxAttempts: 3))
            #expect(first.id == "early")
            #expect(first.state == .running && first.attempts == 1 && first.engine == "preview")
            let second = try #require(try await store.claimNext(worker: "w2", engine: "preview", now: 100, leaseUntil: 200, maxAttempts: 3))
            #expect(second.id == "late")
            #expect(try await store.claimNext(worker: "w3", engine: "preview", now: 100, leaseUntil: 200, maxAttempts: 3) == nil)

            // The lease of "early" expires; another worker takes it over with attempt 2.
            let retaken = try #require(try await store.claimNext(worker: "w3", engine: "preview", now: 201, leaseUntil: 300, maxAttempts: 3))
            #expect(retaken.id == "early" && retaken.attempts == 2)
            // The first worker's late writes are refused.
            #expect(try await store.updateProgress(taskID: "early", attempt: 1, progress: 50, now: 202) == false)
            #expect(try await store.complete(taskID: "early", attempt: 1, result: Self.result, now: 202) == false)
            #expect(try await store.heartbeat(taskID: "early", attempt: 1, leaseUntil: 400, now: 202) == false)
            // The current owner's are accepted.
            #expect(try await store.updateProgress(taskID: "early", attempt: 2, progress: 40, now: 203))
            #expect(try await store.complete(taskID: "early", attempt: 2, result: Self.result, now: 204))
            let done = try #require(try await store.task(id: "early"))
            #expect(done.state == .succeeded && done.progress == 100 && done.result == Self.result && done.completedAt == 204)
            #expect(done.startedAt == 100)
            // Terminal tasks cannot be changed any more.
            #expect(try await store.fail(taskID: "early", attempt: 2, failure: TaskFailure(code: 501, message: "x"), now: 205) == false)
        }
    }

    @Test func readsAlwaysSeeTheLatestCommittedState() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 0, now: 1)
            let hash = APIKeys.hash("k")
            try await store.addAPIKey(APIKeyRecord(id: "k", accountID: account.id, hash: hash, prefix: "k", createdAt: 1))
            try await queuedTask(store, account: account, id: "t", createdAt: 1)
            // Touch every reader connection with the queued state first.
            for _ in 0..<20 {
                #expect(try await store.account(forKeyHash: hash) != nil)
                #expect(try await store.task(id: "t", accountID: account.id)?.state == .queued)
            }
            _ = try await store.claimNext(worker: "w", engine: "preview", now: 2, leaseUntil: 100, maxAttempts: 3)
            for _ in 0..<20 {
                #expect(try await store.task(id: "t", accountID: account.id)?.state == .running)
            }
        }
    }

    @Test func progressNeverGoesBackwards() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 0, now: 1)
            try await queuedTask(store, account: account, id: "t", createdAt: 1)
            _ = try await store.claimNext(worker: "w", engine: "preview", now: 2, leaseUntil: 100, maxAttempts: 3)
            _ = try await store.updateProgress(taskID: "t", attempt: 1, progress: 60, now: 3)
            _ = try await store.updateProgress(taskID: "t", attempt: 1, progress: 30, now: 4)
            #expect(try await store.task(id: "t")?.progress == 60)
        }
    }

    @Test func abandonedTaskFailsAfterMaxAttempts() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 0, now: 1)
            try await queuedTask(store, account: account, id: "t", createdAt: 1)
            var now: Int64 = 10
            for attempt in 1...3 {
                let claimed = try #require(
                    try await store.claimNext(worker: "w\(attempt)", engine: "preview", now: now, leaseUntil: now + 5, maxAttempts: 3))
                #expect(claimed.attempts == attempt)
                now += 10  // the worker dies; its lease runs out
            }
            #expect(try await store.claimNext(worker: "w4", engine: "preview", now: now, leaseUntil: now + 5, maxAttempts: 3) == nil)
            let failed = try #require(try await store.task(id: "t"))
            #expect(failed.state == .failed)
            #expect(failed.failure?.code == 500)
            #expect(failed.failure?.message.contains("3 attempts") == true)
        }
    }

    @Test func upstreamTaskIDsSurviveLaterClaimsAndAreFencedAndPrivate() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 0, now: 1)
            try await queuedTask(store, account: account, id: "t1", createdAt: 1)
            let first = try #require(try await store.claimNext(worker: "w1", engine: "router", now: 10, leaseUntil: 20, maxAttempts: 3))
            #expect(try await store.upstreamTask(taskID: "t1") == nil)
            #expect(try await store.recordEngine(taskID: "t1", attempt: first.attempts, engine: "kling-official", upstreamTaskID: "up-1", now: 11))
            #expect(try await store.task(id: "t1")?.engine == "kling-official")
            // Another worker claims it after the lease expired: the provider task is still known, under its engine.
            let second = try #require(try await store.claimNext(worker: "w2", engine: "router", now: 30, leaseUntil: 40, maxAttempts: 3))
            #expect(try await store.upstreamTask(taskID: "t1") == UpstreamTaskReference(engine: "kling-official", taskID: "up-1"))
            // The stale claim can no longer record anything.
            #expect(try await !store.recordEngine(taskID: "t1", attempt: first.attempts, engine: "kling-market", upstreamTaskID: "up-2", now: 31))
            #expect(try await store.upstreamTask(taskID: "t1")?.taskID == "up-1")
            // A local engine records no provider task.
            #expect(try await store.recordEngine(taskID: "t1", attempt: second.attempts, engine: "preview", upstreamTaskID: nil, now: 32))
            #expect(try await store.upstreamTask(taskID: "t1") == nil)
            #expect(try await store.task(id: "t1")?.engine == "preview")
        }
    }

    @Test func releasedTaskIsQueuedAgain() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 0, now: 1)
            try await queuedTask(store, account: account, id: "t", createdAt: 1)
            _ = try await store.claimNext(worker: "w", engine: "preview", now: 2, leaseUntil: 100, maxAttempts: 3)
            #expect(try await store.release(taskID: "t", attempt: 1, now: 3))
            #expect(try await store.taskCounts()[.queued] == 1)
            let again = try #require(try await store.claimNext(worker: "w", engine: "preview", now: 4, leaseUntil: 100, maxAttempts: 3))
            #expect(again.attempts == 2)
        }
    }

    @Test(.timeLimit(.minutes(1))) func queuedAndReleasedTasksAreAnnouncedToOtherProcesses() async throws {
        try await withBackends { backend in
            let listening = try await backend.open()
            // SQLite is one process's store: its workers are woken in process (WakeSignal) and by polling.
            guard let announcing = listening as? any QueueAnnouncing else { return }
            let other = try await backend.open()
            let (announcements, announce) = AsyncStream<Void>.makeStream()
            let listener = Task { try await announcing.listenForQueuedTasks { announce.yield() } }
            defer { listener.cancel() }
            var received = announcements.makeAsyncIterator()
            _ = await received.next()  // listening has begun

            let account = try await other.createAccount(name: "a", credits: 0, now: 1)
            try await queuedTask(other, account: account, id: "t", createdAt: 1)
            _ = await received.next()
            _ = try #require(try await other.claimNext(worker: "w", engine: "preview", now: 2, leaseUntil: 100, maxAttempts: 3))
            #expect(try await other.release(taskID: "t", attempt: 1, now: 3))
            _ = await received.next()
            // Cancelling ends the listen (and gives its connection back).
            listener.cancel()
            _ = try? await listener.value
        }
    }

    @Test func concurrentClaimsNeverHandOutTheSameTaskTwice() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 0, now: 1)
            for index in 0..<40 { try await queuedTask(store, account: account, id: "t\(index)", createdAt: Int64(index)) }
            let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        var ids: [String] = []
                        while let task = try await store.claimNext(
                            worker: "w\(worker)", engine: "preview", now: 1000, leaseUntil: 9000, maxAttempts: 3)
                        {
                            ids.append(task.id)
                        }
                        return ids
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(claimed.count == 40)
            #expect(Set(claimed).count == 40)
        }
    }

    @Test func workersOfTwoProcessesSettleEveryTaskOnce() async throws {
        try await withBackends { backend in
            let stores = [try await backend.open(), try await backend.open()]
            var accounts: [Account] = []
            for name in ["a", "b", "c"] { accounts.append(try await stores[0].createAccount(name: name, credits: 1000, now: 1)) }
            for index in 0..<30 {
                try await stores[index % 2].insert(
                    task(accounts[index % 3], id: String(format: "t%02d", index), createdAt: Int64(index), credits: 10), maxActiveTasks: nil)
            }
            let settled = try await withThrowingTaskGroup(of: [String].self) { group in
                for worker in 0..<6 {
                    let store = stores[worker % 2]
                    group.addTask {
                        var ids: [String] = []
                        while let claimed = try await store.claimNext(
                            worker: "w\(worker)", engine: "preview", now: 100, leaseUntil: 9000, maxAttempts: 3)
                        {
                            let number = Int(claimed.id.dropFirst())!
                            let done =
                                number.isMultiple(of: 3)
                                ? try await store.fail(
                                    taskID: claimed.id, attempt: claimed.attempts, failure: TaskFailure(code: 501, message: "x"), now: 200)
                                : try await store.complete(taskID: claimed.id, attempt: claimed.attempts, result: Self.result, now: 200)
                            if done { ids.append(claimed.id) }
                        }
                        return ids
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(settled.count == 30 && Set(settled).count == 30)
            #expect(try await stores[1].taskCounts() == [.succeeded: 20, .failed: 10])
            var total: Int64 = 0
            for account in accounts { total += try await stores[1].balance(accountID: account.id) }
            #expect(total == 3000 - 20 * 10)
            #expect(try await stores[0].ledgerMismatches().isEmpty)
        }
    }

    static let result = TaskResult(
        videoPath: "results/t/video.mp4", coverPath: "results/t/cover.jpg", width: 1280, height: 720, durationSeconds: 3, hasAudio: true)
}
