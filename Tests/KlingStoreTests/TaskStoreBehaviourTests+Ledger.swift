import Foundation
import KlingAPI
import KlingCore
import KlingPostgres
import KlingSQLite
import KlingTestSupport
import Logging
import Synchronization
import Testing

/// Credits: charges, refunds, limits and the ledger (``LedgerStore``, with the task writes that charge).
extension TaskStoreBehaviourTests {
    @Test func chargesAndRefundsHappenOnceAndTheLedgerAlwaysBalances() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 100, now: 1)
            try await pricedTask(store, account: account, id: "t1", credits: 60)
            #expect(try await store.balance(accountID: account.id) == 40)
            await #expect(throws: StoreError.self) { try await pricedTask(store, account: account, id: "t2", credits: 50) }
            #expect(try await store.task(id: "t2") == nil)
            #expect(try await store.balance(accountID: account.id) == 40)

            _ = try await store.claimNext(worker: "w", engine: "preview", now: 2, leaseUntil: 10, maxAttempts: 3)
            #expect(try await store.fail(taskID: "t1", attempt: 1, failure: TaskFailure(code: 501, message: "x"), now: 3))
            #expect(try await store.fail(taskID: "t1", attempt: 1, failure: TaskFailure(code: 501, message: "x"), now: 4) == false)
            #expect(try await store.failStuck(createdBefore: 1000, message: "late", now: 5) == 0)
            #expect(try await store.balance(accountID: account.id) == 100)
            let task = try #require(try await store.task(id: "t1"))
            #expect(task.credits == 60 && task.refundedCredits == 60 && task.consumedCredits == 0)
            #expect(try await store.ledger(accountID: account.id).map(\.amount) == [100, -60, 60])
            #expect(try await store.ledgerMismatches().isEmpty)
        }
    }

    @Test func succeededTasksKeepTheirChargeAndAbandonedOrStuckOnesAreRefunded() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 100, now: 1)
            // Claimed in id order (same creation time): done, then abandoned; stuck stays queued.
            for id in ["a-done", "b-abandoned", "c-stuck"] { try await pricedTask(store, account: account, id: id, credits: 10) }
            _ = try await store.claimNext(worker: "w", engine: "preview", now: 2, leaseUntil: 10, maxAttempts: 1)
            #expect(try await store.complete(taskID: "a-done", attempt: 1, result: Self.result, now: 3))
            _ = try await store.claimNext(worker: "w", engine: "preview", now: 4, leaseUntil: 10, maxAttempts: 1)
            #expect(try await store.failAbandoned(now: 11, maxAttempts: 1) == 1)
            #expect(try await store.failStuck(createdBefore: 1000, message: "timed out", now: 12) == 1)
            #expect(try await store.failStuck(createdBefore: 1000, message: "timed out", now: 13) == 0)
            #expect(try await store.task(id: "c-stuck")?.failure?.message == "timed out")
            #expect(try await store.task(id: "b-abandoned")?.consumedCredits == 0)
            #expect(try await store.task(id: "a-done")?.consumedCredits == 10)
            #expect(try await store.balance(accountID: account.id) == 90)
            #expect(try await store.ledgerMismatches().isEmpty)
        }
    }

    @Test func activeTaskLimitRefusesWithoutCharging() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 100, now: 1)
            try await pricedTask(store, account: account, id: "t1", credits: 10, maxActive: 2)
            try await pricedTask(store, account: account, id: "t2", credits: 10, maxActive: 2)
            await #expect(throws: StoreError.self) { try await pricedTask(store, account: account, id: "t3", credits: 10, maxActive: 2) }
            #expect(try await store.balance(accountID: account.id) == 80)
            #expect(try await store.task(id: "t3") == nil)
        }
    }

    @Test func concurrentChargesNeverOverdraw() async throws {
        try await withBackends { backend in
            let first = try await backend.open()
            let second = try await backend.open()  // another process on the same database
            let account = try await first.createAccount(name: "a", credits: 1000, now: 1)
            let accepted = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<60 {
                    let store = index.isMultiple(of: 2) ? first : second
                    group.addTask {
                        do {
                            try await pricedTask(store, account: account, id: "t\(index)", credits: 30)
                            return true
                        } catch let error as StoreError where error.isInsufficientCredits {
                            return false
                        }
                    }
                }
                return try await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
            }
            #expect(accepted == 33)
            #expect(try await first.balance(accountID: account.id) == 10)
            #expect(try await second.ledgerMismatches().isEmpty)
        }
    }

    @Test func aBadCreateAmongConcurrentOnesFailsAloneAndChargesNothing() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 1000, now: 1)
            // Eleven creates at once (PostgreSQL writes them in groups); one reuses an id.
            let ids = (0..<10).map { "t\($0)" } + ["t3"]
            let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                for id in ids {
                    group.addTask {
                        do {
                            try await pricedTask(store, account: account, id: id, credits: 10)
                            return true
                        } catch is StoreError {
                            throw CancellationError()  // a refusal is not what this test sends
                        } catch {
                            return false
                        }
                    }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 }.count == 10)
            #expect(try await store.balance(accountID: account.id) == 900)
            #expect(try await store.taskCounts()[.queued] == 10)
            #expect(try await store.ledgerMismatches().isEmpty)
        }
    }

    @Test func creditsCannotGoNegativeAndSwitchesReachEveryHandle() async throws {
        try await withBackends { backend in
            let writer = try await backend.open()
            let reader = try await backend.open()
            let account = try await writer.createAccount(name: "a", credits: 5, now: 1)
            await #expect(throws: StoreError.self) { _ = try await writer.addCredits(accountID: account.id, amount: -6, note: "x", now: 2) }
            #expect(try await writer.addCredits(accountID: account.id, amount: -5, note: "x", now: 2) == 0)
            #expect(try await reader.switches() == ServiceSwitches())
            try await writer.setMaintenance(true)
            try await writer.setFeature(.fourK, enabled: false)
            #expect(try await soon(reader) { try await reader.switches() == ServiceSwitches(maintenance: true, disabledFeatures: [.fourK]) })
            try await writer.setFeature(.fourK, enabled: true)
            #expect(try await soon(reader) { try await reader.switches().disabledFeatures.isEmpty })
            try await writer.setLimits(accountID: account.id, limits: LimitOverrides(maxActiveTasks: 7))
            #expect(try await reader.account(named: "a")?.limits.maxActiveTasks == 7)
        }
    }
}
