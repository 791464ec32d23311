import KlingAPI
import Logging

/// Creates and reads tasks for an account: the one place dialects go through to reach the queue, and where every
/// create is priced, charged and checked against the operator's switches and the account's limits.
public struct TaskService: Sendable {
    /// What the API side reads and writes: everything but the queue's claims and the monitoring figures.
    public typealias Store = AccountStore & LedgerStore & SwitchStore & TaskRecordStore & CallbackOutbox & RetentionStore

    private let store: any Store
    private let signal: WakeSignal
    /// Prices of requests.
    public let prices: PriceTable
    /// Server-wide request limits; accounts may override them.
    public let defaultLimits: AccountLimits

    public init(store: any Store, signal: WakeSignal, prices: PriceTable = .init(), defaultLimits: AccountLimits = .init()) {
        self.store = store
        self.signal = signal
        self.prices = prices
        self.defaultLimits = defaultLimits
    }

    /// Throws a 455 ``RequestRefusal`` while the server is in maintenance mode (checked before a create body is read).
    public func checkAcceptingCreates() async throws {
        if try await store.switches().maintenance {
            throw RequestRefusal(code: 455, message: "the service is under maintenance and accepts no new tasks right now; queries still work")
        }
    }

    /// The price of a validated request, without charging anything.
    public func quote(_ request: GenerationRequest) -> PriceQuote {
        prices.quote(request)
    }

    /// Stores a validated request as a queued task owned by `account`, charging its price in the same transaction,
    /// and wakes idle workers. Refusals (505 feature off, 402 credits, 429 active tasks) store and charge nothing.
    ///
    /// With an `idempotencyKey`, a repeat of the same request within 24 hours returns the first task (charged once);
    /// the same key with a different request is refused with 409.
    public func create(
        _ decoded: DecodedCreateRequest, account: Account, dialect: String, idempotencyKey: String? = nil, externalID: String? = nil
    ) async throws -> TaskRecord {
        try await checkAcceptingCreates()
        let switches = try await store.switches()
        for (feature, field) in ServiceSwitches.Feature.used(by: decoded.request) where switches.disabledFeatures.contains(feature) {
            throw RequestRefusal(code: 505, message: "\(field): the \(feature.rawValue) feature is disabled on this server right now")
        }
        let price = prices.quote(decoded.request).credits
        let now = TaskWorker.nowMillis()
        let task = TaskRecord(
            id: "task_" + APIKeys.randomID(), accountID: account.id, dialect: dialect, model: decoded.model,
            request: decoded.request, params: decoded.params.jsonString(), createdAt: now, updatedAt: now, credits: price,
            externalID: externalID)
        let maxActive = limits(for: account).maxActiveTasks
        do {
            if let idempotencyKey {
                let fingerprint = APIKeys.hash(dialect + "\n" + decoded.model + "\n" + task.params)
                let outcome = try await store.insert(
                    task, maxActiveTasks: maxActive > 0 ? maxActive : nil, idempotencyKey: idempotencyKey, fingerprint: fingerprint, now: now)
                if case .existing(let id) = outcome, let existing = try await store.task(id: id, accountID: account.id) {
                    return existing
                }
            } else {
                try await store.insert(task, maxActiveTasks: maxActive > 0 ? maxActive : nil)
            }
        } catch let error as StoreError where error.isExternalIDTaken {
            throw RequestRefusal(code: 422, message: error.message)
        } catch let error as StoreError where error.isConflict {
            throw RequestRefusal(code: 409, message: "Idempotency-Key: \(error.message)")
        } catch let error as StoreError where error.isInsufficientCredits {
            throw RequestRefusal(code: 402, message: "insufficient credits: this task costs \(price) credits and \(error.message)")
        } catch let error as StoreError where error.isLimitReached {
            throw RequestRefusal(code: 429, message: "too many active tasks: \(error.message)", isActiveTaskLimit: true)
        }
        signal.notify()
        return task
    }

    /// Cancels a queued or running task of `account` (refunded; its callback says so). Throws 404 for tasks the account
    /// does not have and 409 for finished ones.
    public func cancel(id: String, account: Account) async throws -> TaskRecord {
        let failure = TaskFailure(code: TaskFailure.cancelledCode, message: "cancelled by the caller")
        switch try await store.cancel(taskID: id, accountID: account.id, failure: failure, now: TaskWorker.nowMillis()) {
        case .notFound:
            throw RequestRefusal(code: 404, message: "taskId: no task \(id) for this account")
        case .alreadyFinished:
            throw RequestRefusal(code: 409, message: "taskId: task \(id) has already finished and cannot be cancelled")
        case .cancelled:
            guard let task = try await store.task(id: id, accountID: account.id) else { throw StoreError.notFound("no task \(id)") }
            return task
        }
    }

    /// Records that a task's result files were deleted at the owner's request.
    public func markResultsDeleted(id: String, account: Account) async throws {
        guard try await store.task(id: id, accountID: account.id) != nil else { return }
        try await store.markResultsExpired(taskIDs: [id], now: TaskWorker.nowMillis())
    }

    /// A page of `account`'s tasks.
    public func list(account: Account, limit: Int, after: String?, ascending: Bool, offset: Int = 0) async throws -> (
        tasks: [TaskRecord], hasMore: Bool
    ) {
        try await store.listTasks(accountID: account.id, limit: limit, after: after, ascending: ascending, offset: offset)
    }

    /// The account's task with this external id.
    public func task(externalID: String, account: Account) async throws -> TaskRecord? {
        try await store.task(externalID: externalID, accountID: account.id)
    }

    /// The account of a Kling access key, with its secret key (for verifying JWTs).
    public func jwtCredential(accessKey: String) async throws -> (account: Account, secretKey: String)? {
        try await store.jwtCredential(accessKey: accessKey)
    }

    /// The task if `account` owns it; `nil` for unknown ids and other accounts' tasks alike.
    public func task(id: String, account: Account) async throws -> TaskRecord? {
        try await store.task(id: id, accountID: account.id)
    }

    /// The account of the key whose ``APIKeys/hash(_:)`` this is, or `nil` for unknown and revoked keys.
    public func authenticate(keyHash: String) async throws -> Account? {
        try await store.account(forKeyHash: keyHash)
    }

    /// The account's credit balance.
    public func balance(account: Account) async throws -> Int64 {
        try await store.balance(accountID: account.id)
    }

    /// The callbacks of a task `account` owns, with their delivery attempts.
    public func callbacks(taskID: String, account: Account) async throws -> [(CallbackRecord, [CallbackAttempt])] {
        try await store.callbacks(taskID: taskID, accountID: account.id)
    }

    /// The limits that apply to `account`.
    public func limits(for account: Account) -> AccountLimits {
        defaultLimits.applying(account.limits)
    }
}

/// A request the service declines with one of the documented codes (402, 429, 455, 505) and a message saying why.
public struct RequestRefusal: Error, Sendable, Hashable {
    public var code: Int
    public var message: String
    /// Set when a 429 is the account's active-task limit rather than a rate limit (dialects that tell them apart).
    public var isActiveTaskLimit: Bool

    public init(code: Int, message: String, isActiveTaskLimit: Bool = false) {
        self.code = code
        self.message = message
        self.isActiveTaskLimit = isActiveTaskLimit
    }
}
