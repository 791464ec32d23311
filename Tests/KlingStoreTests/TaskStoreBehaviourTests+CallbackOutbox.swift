import Foundation
import KlingAPI
import KlingCore
import KlingPostgres
import KlingSQLite
import KlingTestSupport
import Logging
import Synchronization
import Testing

/// The callback outbox and webhook secrets (``CallbackOutbox``).
extension TaskStoreBehaviourTests {
    @Test func callbacksAreLeasedRetriedAndRecorded() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 0, now: 1)
            try await store.insert(task(account, id: "t", callbackURL: "https://example.com/hook"), maxActiveTasks: nil)
            _ = try await store.claimNext(worker: "w", engine: "preview", now: 2, leaseUntil: 100, maxAttempts: 3)
            // The market dialect calls back on terminal states only.
            #expect(try await store.claimDueCallbacks(now: 3, leaseUntil: 50, limit: 10).isEmpty)
            #expect(try await store.complete(taskID: "t", attempt: 1, result: Self.result, now: 10))
            let first = try await store.claimDueCallbacks(now: 10, leaseUntil: 50, limit: 10)
            #expect(first.map(\.attempts) == [1])
            let callback = try #require(first.first)
            #expect(callback.taskID == "t" && callback.state == .pending && callback.dialect == "market")
            #expect(try await store.claimDueCallbacks(now: 20, leaseUntil: 60, limit: 10).isEmpty)  // leased
            try await store.recordCallbackAttempt(
                CallbackAttempt(callbackID: callback.id, attempt: 1, status: 500, error: "HTTP 500", durationMillis: 7, at: 21),
                payload: "{\"a\":1}", next: .retry(at: 200), now: 21)
            #expect(try await store.claimDueCallbacks(now: 150, leaseUntil: 300, limit: 10).isEmpty)
            let second = try await store.claimDueCallbacks(now: 200, leaseUntil: 300, limit: 10)
            #expect(second.map(\.attempts) == [2])
            // The payload stays the one of the first attempt.
            try await store.recordCallbackAttempt(
                CallbackAttempt(callbackID: callback.id, attempt: 2, status: 204, error: nil, durationMillis: 3, at: 201),
                payload: "{\"a\":2}", next: .delivered, now: 201)
            let listed = try await store.callbacks(taskID: "t", accountID: account.id)
            let (record, attempts) = try #require(listed.first)
            #expect(listed.count == 1)
            #expect(record.state == .delivered && record.payload == "{\"a\":1}" && record.lastStatus == 204)
            #expect(attempts.map(\.status) == [500, 204])
            let stats = try await store.operationalStats(now: 300)
            #expect(stats.callbacksByState[.delivered] == 1)
            #expect(stats.callbackAttempts == ["ok": 1, "failed": 1])
            #expect(stats.tasksByState[.succeeded] == 1)

            #expect(try await store.resendCallback(id: callback.id, now: 400))
            #expect(try await store.resendCallback(id: "nope", now: 400) == false)
            #expect(try await store.claimDueCallbacks(now: 400, leaseUntil: 500, limit: 10).map(\.attempts) == [3])
        }
    }

    @Test func klingTasksCallBackWhenFirstClaimed() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 0, now: 1)
            try await store.insert(task(account, id: "t", dialect: "kling", callbackURL: "https://example.com/hook"), maxActiveTasks: nil)
            _ = try await store.claimNext(worker: "w", engine: "preview", now: 2, leaseUntil: 5, maxAttempts: 3)
            _ = try await store.claimNext(worker: "w", engine: "preview", now: 10, leaseUntil: 20, maxAttempts: 3)  // lease expired
            let callbacks = try await store.callbacks(taskID: "t", accountID: account.id)
            #expect(callbacks.map(\.0.event) == ["processing"])
        }
    }

    @Test func webhookSecretsAreMadeOnceAndRotateWithOverlap() async throws {
        try await withBackends { backend in
            let first = try await backend.open()
            let second = try await backend.open()
            let account = try await first.createAccount(name: "a", credits: 0, now: 1)
            // Two processes asking at once still make one secret.
            async let one = first.webhookSecrets(accountID: account.id, now: 2)
            async let two = second.webhookSecrets(accountID: account.id, now: 2)
            let (a, b) = try await (one, two)
            #expect(a.count == 1 && a == b)
            let rotated = try await first.rotateWebhookSecret(accountID: account.id, previousUntil: 100, now: 10)
            #expect(rotated.count == 2 && rotated.last == a.first && rotated.first != a.first)
            #expect(try await second.webhookSecrets(accountID: account.id, now: 50) == rotated)
            #expect(try await second.webhookSecrets(accountID: account.id, now: 101) == [rotated[0]])

            let secret = try await first.installationSecret("links")
            #expect(try await second.installationSecret("links") == secret)
            #expect(try await second.installationSecret("other") != secret)

            try await first.addJWTCredential(accessKey: "ak", accountID: account.id, secretKey: "sk", now: 3)
            let credential = try await second.jwtCredential(accessKey: "ak")
            #expect(credential?.account.id == account.id && credential?.secretKey == "sk")
            #expect(try await second.jwtCredential(accessKey: "nope") == nil)
        }
    }
}
