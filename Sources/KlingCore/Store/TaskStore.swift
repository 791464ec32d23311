/// Durable storage of accounts, keys and tasks; the queue's single source of truth.
///
/// Every implementation (SQLite, later PostgreSQL) must pass the same behaviour suite. Methods that change a claimed
/// task take the claim's `attempt` as a fencing token: they do nothing (and return `false`) when the task has since
/// been claimed by someone else or has reached a terminal state.
public protocol TaskStore: Sendable {
    // MARK: Accounts and keys

    /// Creates an account with a starting grant of `credits` (a ledger top-up); throws ``StoreError/conflict`` when
    /// the name is taken.
    func createAccount(name: String, credits: Int64, now: Int64) async throws -> Account
    func account(named name: String) async throws -> Account?
    func accounts() async throws -> [Account]
    /// Stores a key's hash for an account.
    func addAPIKey(_ key: APIKeyRecord) async throws
    func apiKeys(accountID: String) async throws -> [APIKeyRecord]
    /// The account owning an unrevoked key with this hash.
    func account(forKeyHash hash: String) async throws -> Account?
    /// Revokes a key of an account; `false` when the account has no such active key. Takes effect for every
    /// process on the store at once.
    func revokeAPIKey(id: String, accountID: String, now: Int64) async throws -> Bool

    /// Stores a Kling-style access key / secret key pair for an account (JWTs are signed with the secret).
    func addJWTCredential(accessKey: String, accountID: String, secretKey: String, now: Int64) async throws
    /// The account and secret key of an access key.
    func jwtCredential(accessKey: String) async throws -> (account: Account, secretKey: String)?
    /// Replaces an account's limit overrides.
    func setLimits(accountID: String, limits: LimitOverrides) async throws

    // MARK: Credits

    /// The account's balance.
    func balance(accountID: String) async throws -> Int64
    /// Adds (or, negative, takes away) credits with a ledger entry; returns the new balance. Throws
    /// ``StoreError/insufficientCredits`` rather than let the balance go below zero.
    func addCredits(accountID: String, amount: Int64, note: String, now: Int64) async throws -> Int64
    /// The account's ledger, oldest first.
    func ledger(accountID: String) async throws -> [LedgerEntry]
    /// Accounts whose balance is not the sum of their ledger (should always be empty).
    func ledgerMismatches() async throws -> [LedgerMismatch]

    // MARK: Switches

    /// Maintenance mode and feature switches as stored now.
    func switches() async throws -> ServiceSwitches
    func setMaintenance(_ on: Bool) async throws
    /// A random secret of this installation (made on first use, then the same for every process), e.g. the key that
    /// signs file links.
    func installationSecret(_ name: String) async throws -> String
    func setFeature(_ feature: ServiceSwitches.Feature, enabled: Bool) async throws

    // MARK: Tasks

    /// Stores a new queued task and charges its `credits` to its account, in one transaction. Throws
    /// ``StoreError/insufficientCredits`` when the balance cannot cover the price, or ``StoreError/limitReached`` when
    /// the account already has `maxActiveTasks` queued or running tasks; nothing is stored or charged then.
    func insert(_ task: TaskRecord, maxActiveTasks: Int?) async throws
    /// ``insert(_:maxActiveTasks:)`` under an idempotency key: when the account used `key` in the last 24 hours, nothing
    /// is stored or charged and the earlier task comes back (``IdempotentInsert/existing``), or
    /// ``StoreError/conflict`` when that request's `fingerprint` differs.
    func insert(_ task: TaskRecord, maxActiveTasks: Int?, idempotencyKey key: String, fingerprint: String, now: Int64) async throws
        -> IdempotentInsert
    /// Cancels a queued or running task of `accountID`: failed with `failure`, refunded and its callback recorded, in one
    /// transaction. A worker rendering it loses its claim.
    func cancel(taskID: String, accountID: String, failure: TaskFailure, now: Int64) async throws -> CancelOutcome
    /// The account's task with this external id (Kling's `external_task_id`).
    func task(externalID: String, accountID: String) async throws -> TaskRecord?
    /// A task, only if it belongs to `accountID`: other accounts get `nil`, exactly as for unknown ids.
    func task(id: String, accountID: String) async throws -> TaskRecord?
    /// A page of the account's tasks, newest first (or oldest first with `ascending`), starting after the task `after`;
    /// also whether more follow.
    func listTasks(accountID: String, limit: Int, after: String?, ascending: Bool, offset: Int) async throws -> (tasks: [TaskRecord], hasMore: Bool)
    /// A task by id regardless of owner (workers and admin tools only).
    func task(id: String) async throws -> TaskRecord?

    // MARK: Queue

    /// Claims the oldest runnable task: queued, or running with an expired lease and attempts left.
    /// Tasks whose lease expired after `maxAttempts` claims are failed by the claim (on PostgreSQL, by a claim that
    /// finds nothing to take, so a busy claim stays one statement; the sweeper's ``failAbandoned(now:maxAttempts:)``
    /// catches them too).
    /// Returns the task with `state == .running` and `attempts` incremented (the fencing token).
    func claimNext(worker: String, engine: String, now: Int64, leaseUntil: Int64, maxAttempts: Int) async throws -> TaskRecord?
    /// Extends the lease of a claimed task; `false` when the claim is no longer ours.
    func heartbeat(taskID: String, attempt: Int, leaseUntil: Int64, now: Int64) async throws -> Bool
    /// Records progress (0-100) of a claimed task; `false` when the claim is no longer ours.
    func updateProgress(taskID: String, attempt: Int, progress: Int, now: Int64) async throws -> Bool
    /// Marks a claimed task succeeded with its result.
    func complete(taskID: String, attempt: Int, result: TaskResult, now: Int64) async throws -> Bool
    /// Marks a claimed task failed and refunds its price, in one transaction.
    func fail(taskID: String, attempt: Int, failure: TaskFailure, now: Int64) async throws -> Bool
    /// Puts a claimed task back in the queue (graceful shutdown before it finished).
    func release(taskID: String, attempt: Int, now: Int64) async throws -> Bool
    /// Fails (and refunds) every running task whose lease expired after its last allowed attempt; returns how many.
    func failAbandoned(now: Int64, maxAttempts: Int) async throws -> Int
    /// Fails (and refunds) every queued or running task created before `createdBefore`; returns how many.
    func failStuck(createdBefore: Int64, message: String, now: Int64) async throws -> Int
    /// Records, for a claimed task, the engine now producing it and (for an upstream engine) the provider's task id,
    /// which is kept privately: it is never part of a ``TaskRecord``. `false` when the claim is no longer ours.
    func recordEngine(taskID: String, attempt: Int, engine: String, upstreamTaskID: String?, now: Int64) async throws -> Bool
    /// The engine and provider task id recorded for a task by ``recordEngine(taskID:attempt:engine:upstreamTaskID:now:)``,
    /// if a provider accepted it (a later claim resumes following it instead of creating a second upstream task).
    func upstreamTask(taskID: String) async throws -> UpstreamTaskReference?
    /// Counts of tasks by state.
    func taskCounts() async throws -> [TaskState: Int]
    /// Figures for monitoring, read across every process on the store.
    func operationalStats(now: Int64) async throws -> OperationalStats

    // MARK: Callbacks

    /// The account's webhook secrets, current first (a second one only during a rotation); makes the first on demand.
    func webhookSecrets(accountID: String, now: Int64) async throws -> [String]
    /// Makes a new current secret; the previous one keeps signing until `previousUntil`.
    func rotateWebhookSecret(accountID: String, previousUntil: Int64, now: Int64) async throws -> [String]
    /// Claims up to `limit` callbacks due at `now`: each gets its attempt counted and is held until `leaseUntil`, so no
    /// other deliverer sends it meanwhile. (Terminal task states insert callbacks in their own transactions.)
    func claimDueCallbacks(now: Int64, leaseUntil: Int64, limit: Int) async throws -> [CallbackRecord]
    /// Records an attempt's outcome (and the payload, fixed at the first attempt).
    func recordCallbackAttempt(_ attempt: CallbackAttempt, payload: String, next: CallbackNext, now: Int64) async throws
    /// A task's callbacks with their attempts, for the task's owner.
    func callbacks(taskID: String, accountID: String) async throws -> [(CallbackRecord, [CallbackAttempt])]
    /// Puts a callback back in the queue for an attempt now (admin re-send); `false` when there is no such callback.
    func resendCallback(id: String, now: Int64) async throws -> Bool

    // MARK: Retention

    /// Succeeded tasks completed before `before` whose result files are still kept (oldest first).
    func tasksWithResults(completedBefore before: Int64, limit: Int) async throws -> [String]
    /// Records that these tasks' result files were deleted.
    func markResultsExpired(taskIDs: [String], now: Int64) async throws
}

/// Store-wide figures for `/metrics`.
public struct OperationalStats: Sendable, Hashable {
    public var tasksByState: [TaskState: Int] = [:]
    /// Age of the oldest queued task in seconds (0 when none waits).
    public var oldestQueuedSeconds: Double = 0
    /// Ledger totals by kind (charges and corrections negative).
    public var ledgerTotals: [LedgerEntry.Kind: Int64] = [:]
    /// Callbacks by state.
    public var callbacksByState: [CallbackRecord.State: Int] = [:]
    /// Delivery attempts by outcome (`ok` for a 2xx, `failed` otherwise).
    public var callbackAttempts: [String: Int] = [:]

    public init() {}
}

/// A provider's task that a task of ours was forwarded to (private: never shown to clients).
public struct UpstreamTaskReference: Sendable, Hashable {
    /// The engine that forwarded it (`kling-official`, ...).
    public var engine: String
    /// The provider's task id.
    public var taskID: String

    public init(engine: String, taskID: String) {
        self.engine = engine
        self.taskID = taskID
    }
}

/// What an idempotent insert did.
public enum IdempotentInsert: Sendable, Hashable {
    case created
    /// The key was used before for the same request: this is that task's id.
    case existing(taskID: String)
}

/// What a cancel did.
public enum CancelOutcome: Sendable, Hashable {
    case cancelled
    /// The task had already succeeded or failed.
    case alreadyFinished
    case notFound
}

/// Store failures that callers act on.
public struct StoreError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: Hashable, Sendable { case conflict, externalIDTaken, notFound, insufficientCredits, limitReached }
    private let code: Code
    public let message: String

    /// A unique value (account name, key) already exists.
    public static func conflict(_ message: String) -> StoreError { StoreError(code: .conflict, message: message) }
    /// A referenced row does not exist.
    public static func notFound(_ message: String) -> StoreError { StoreError(code: .notFound, message: message) }

    /// The account already has a task with this external id.
    public static func externalIDTaken(_ message: String) -> StoreError { StoreError(code: .externalIDTaken, message: message) }
    /// The balance cannot cover a charge.
    public static func insufficientCredits(_ message: String) -> StoreError { StoreError(code: .insufficientCredits, message: message) }
    /// An account limit (active tasks) is reached.
    public static func limitReached(_ message: String) -> StoreError { StoreError(code: .limitReached, message: message) }

    public var isConflict: Bool { code == .conflict }
    public var isExternalIDTaken: Bool { code == .externalIDTaken }
    public var isInsufficientCredits: Bool { code == .insufficientCredits }
    public var isLimitReached: Bool { code == .limitReached }
    public var isNotFound: Bool { code == .notFound }
    public var description: String { message }
}
