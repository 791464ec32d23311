import AsyncHTTPClient
import Foundation
import HTTPTypes
import KlingCore
import KlingPreview
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// Sends the callbacks the store recorded with terminal task states: at least once, signed (Standard Webhooks, plus
/// the Market dialect's headers), retried on a schedule with jitter, `Retry-After` honoured, 410 ending it, redirects
/// never followed, and only to public addresses unless `KLING_FETCH_ALLOW_PRIVATE=true`.
public struct CallbackDeliverer: Service {
    /// Delivery settings.
    public struct Configuration: Sendable {
        /// Wait before each attempt after a failure: attempt n+1 waits `retryDelays[n-1]`; when they run out the
        /// callback has failed. Default about 3 days: 5 s, 5 min, 30 min, 2 h, 5 h, then 10 h six times.
        public var retryDelays: [Duration] =
            [.seconds(5), .seconds(300), .seconds(1800), .seconds(7200), .seconds(18_000)]
            + Array(repeating: .seconds(36_000), count: 6)
        /// Time allowed for one attempt, connection included (`KLING_CALLBACK_TIMEOUT_SECONDS`, 15).
        public var timeout: Duration = .seconds(15)
        /// How often the outbox is checked.
        public var pollInterval: Duration = .milliseconds(500)
        /// Random spread applied to each retry delay (0.2 = ±20%).
        public var jitter: Double = 0.2
        /// Lift the public-address rule (development and tests only).
        public var allowPrivateAddresses = false

        public init() {}
    }

    /// The outbox, the tasks whose callbacks it renders, and the ledger for the balance Market callbacks carry.
    private let store: any CallbackOutbox & TaskRecordStore & LedgerStore
    private let links: ResultLinks
    private let configuration: Configuration
    private let logger: Logger

    /// Rung when a task of this process settles: the deliverer then looks at the outbox at once.
    private let wake: WakeSignal?

    public init(
        store: any CallbackOutbox & TaskRecordStore & LedgerStore, links: ResultLinks, configuration: Configuration, wake: WakeSignal? = nil,
        logger: Logger
    ) {
        self.wake = wake
        self.store = store
        self.links = links
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let seen = wake?.current ?? 0
            let now = TaskWorker.nowMillis()
            do {
                // Shutdown stops a claim that waits for the store (a database that went away).
                let store = self.store, leaseUntil = now + configuration.timeout.milliseconds + 5_000
                let due = try await cancelWhenGracefulShutdown {
                    try await store.claimDueCallbacks(now: now, leaseUntil: leaseUntil, limit: 16)
                }
                await withDiscardingTaskGroup { group in
                    for callback in due { group.addTask { await deliver(callback) } }
                }
                if !due.isEmpty { continue }
            } catch {
                if !Task.isShuttingDownGracefully { logger.error("reading the callback outbox failed", metadata: ["error": "\(error)"]) }
            }
            // Until the next poll, or sooner when a task of this process settles (other processes' tasks wait for the poll).
            let (wake, pause) = (self.wake, configuration.pollInterval)
            try? await cancelWhenGracefulShutdown {
                if let wake { await wake.wait(since: seen, timeout: pause) } else { try await Task.sleep(for: pause) }
            }
        }
    }

    /// One attempt of one callback, with its outcome recorded.
    func deliver(_ callback: CallbackRecord) async {
        var logger = self.logger
        logger[metadataKey: "task_id"] = "\(callback.taskID)"
        logger[metadataKey: "webhook_id"] = "\(callback.id)"
        let started = ContinuousClock.now
        let now = TaskWorker.nowMillis()
        let payload: String
        do {
            if let stored = callback.payload {
                payload = stored
            } else {
                payload = try await render(callback)
            }
        } catch {
            logger.error("could not render a callback; will retry", metadata: ["error": "\(error)"])
            return  // the claim's lease runs out and the callback is picked up again
        }
        var status: Int?
        var failure: String?
        var retryAfter: Duration?
        do {
            let secrets = try await store.webhookSecrets(accountID: callback.accountID, now: now)
            let timeout = configuration.timeout
            // The whole attempt (resolving, connecting, the answer) is bounded, whatever the client's own deadlines do.
            let answer = try await withThrowingTaskGroup(of: Answer.self) { group in
                group.addTask { try await post(callback, payload: Data(payload.utf8), secrets: secrets) }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    throw AttemptTimedOut(timeout: timeout)
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
            status = answer.status
            retryAfter = answer.retryAfter
            if !(200..<300).contains(answer.status) { failure = "the receiver answered HTTP \(answer.status)" }
        } catch {
            failure = "\(error)"
        }
        let next: CallbackNext
        if failure == nil {
            next = .delivered
        } else if status == 410 {
            next = .gone
        } else if callback.attempts > configuration.retryDelays.count {
            next = .failed
        } else {
            let scheduled =
                configuration.retryDelays[callback.attempts - 1] * Double.random(in: (1 - configuration.jitter)...(1 + configuration.jitter))
            let wait = retryAfter.map { min(max($0, .zero), .seconds(86_400)) } ?? scheduled
            next = .retry(at: TaskWorker.nowMillis() + wait.milliseconds)
        }
        let attempt = CallbackAttempt(
            callbackID: callback.id, attempt: callback.attempts, status: status, error: failure,
            durationMillis: (ContinuousClock.now - started).milliseconds, at: now)
        do {
            try await store.recordCallbackAttempt(attempt, payload: payload, next: next, now: TaskWorker.nowMillis())
        } catch {
            logger.error("recording a callback attempt failed", metadata: ["error": "\(error)"])
        }
        switch next {
        case .delivered: logger.info("callback delivered", metadata: ["status": "\(status ?? 0)", "attempt": "\(callback.attempts)"])
        case .retry(let at):
            logger.warning(
                "callback attempt failed; will retry", metadata: ["error": "\(failure ?? "")", "attempt": "\(callback.attempts)", "next_at": "\(at)"])
        case .failed: logger.error("callback failed after every scheduled attempt", metadata: ["error": "\(failure ?? "")"])
        case .gone: logger.warning("callback receiver answered 410 Gone; no more attempts")
        }
    }

    /// The payload of a callback in its task's dialect, rendered from the task as it is now (terminal).
    private func render(_ callback: CallbackRecord) async throws -> String {
        guard let task = try await store.task(id: callback.taskID) else { throw StoreError.notFound("no task \(callback.taskID)") }
        let data: Data
        switch callback.dialect {
        case CRUNDialect.name:
            data = try JSONResponse.encoder.encode(CRUNTaskInfo(task, links: links))
        case KlingOfficialDialect.name:
            var object = KlingTaskData(task, links: links)
            if callback.event == "processing" {
                object.taskStatus = KlingOfficialDialect.status(.running)
                object.taskStatusMessage = ""
                object.taskResult = nil
            }
            data = try JSONResponse.encoder.encode(object)
        case OpenAIDialect.name:
            data = try JSONResponse.encoder.encode(OpenAIVideo(task, links: links))
        default:
            var details = MarketTaskDetails(task, links: links)
            details.remainedCredits = try await store.balance(accountID: task.accountID)
            let succeeded = task.state == .succeeded
            data = try JSONResponse.encoder.encode(
                MarketDialect.Envelope(code: succeeded ? 200 : 501, msg: succeeded ? "success" : (task.failure?.message ?? "failed"), data: details))
        }
        return String(decoding: data, as: UTF8.self)
    }

    private struct Answer: Sendable {
        var status: Int
        var retryAfter: Duration?
    }

    private struct AttemptTimedOut: Error, CustomStringConvertible {
        var timeout: Duration
        var description: String { "no answer within \(timeout)" }
    }

    private func post(_ callback: CallbackRecord, payload: Data, secrets: [String]) async throws -> Answer {
        let target = try await OutboundAddress.check(callback.url, allowPrivate: configuration.allowPrivateAddresses)
        let timestamp = TaskWorker.nowMillis() / 1000
        var request = HTTPClientRequest(url: callback.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "KlingKit-Webhooks/1")
        request.headers.add(name: "webhook-id", value: callback.id)
        request.headers.add(name: "webhook-timestamp", value: String(timestamp))
        request.headers.add(
            name: "webhook-signature", value: WebhookSigner.signature(secrets: secrets, id: callback.id, timestamp: timestamp, body: payload))
        if callback.dialect == MarketDialect.name, let current = secrets.first,
            let signature = WebhookSigner.marketSignature(secret: current, taskID: callback.taskID, timestamp: timestamp)
        {
            request.headers.add(name: "X-Webhook-Timestamp", value: String(timestamp))
            request.headers.add(name: "X-Webhook-Signature", value: signature)
        }
        request.body = .bytes(ByteBuffer(data: payload))

        let timeout = TimeAmount.milliseconds(configuration.timeout.milliseconds)
        // A refused connection is retried until the connect timeout; keep that short of the whole attempt's.
        let connect = TimeAmount.milliseconds(min(configuration.timeout.milliseconds, 5_000))
        var clientConfiguration = HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: connect, read: timeout), decompression: .disabled)
        if let address = target.pinnedAddress { clientConfiguration.dnsOverride = [target.host: address] }
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: clientConfiguration)
        defer { client.shutdown { _ in } }
        let response = try await client.execute(request, timeout: timeout)
        // Read (and drop) a bounded amount of the answer so the connection closes cleanly.
        _ = try? await response.body.collect(upTo: 64 * 1024)
        return Answer(status: Int(response.status.code), retryAfter: response.headers.first(name: "Retry-After").flatMap(Self.retryAfter))
    }

    /// `Retry-After` as seconds or an HTTP date.
    static func retryAfter(_ value: String) -> Duration? {
        if let seconds = Int(value.trimmingCharacters(in: .whitespaces)) { return .seconds(max(0, seconds)) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return nil }
        return .milliseconds(max(0, Int64(date.timeIntervalSinceNow * 1000)))
    }
}

/// Refuses, at create time, a callback URL whose host resolves to a non-public address (the deliverer checks again at
/// every attempt). A name that does not resolve now is accepted: it may by the time the task finishes.
func checkCallbackAddress(_ url: String?, field: String, allowPrivate: Bool) async throws {
    guard let url else { return }
    do {
        _ = try await OutboundAddress.check(url, allowPrivate: allowPrivate)
    } catch let refused as OutboundAddress.Refused where !refused.isUnresolvable {
        throw APIError.validation("\(field): \(refused.description)")
    } catch is OutboundAddress.Refused {
        return
    }
}
