/// The callback outbox: callbacks recorded in the same transaction as the task change they announce, claimed by
/// deliverers, with every attempt kept; and the webhook secrets that sign them.
public protocol CallbackOutbox: Sendable {
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
}
