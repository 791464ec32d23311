import AsyncHTTPClient
import Foundation
import KlingAPI
import KlingJWT
import Logging
import NIOCore
import NIOHTTP1

/// A client of a Kling 3.0 provider (a KlingKit server or a reseller) in one of its dialects.
///
/// ```swift
/// let client = KlingClient(configuration: .init(baseURL: "http://localhost:8080", credentials: .bearer(key)))
/// let task = try await client.create(VideoRequest(prompt: "A red fox runs through snow").duration(5).mode(.std))
/// for try await update in client.wait(for: task.id) { print(update.task.state, update.task.progress ?? 0) }
/// try await client.download(taskID: task.id, to: URL(fileURLWithPath: "fox.mp4"))
/// ```
public struct KlingClient: Sendable {
    /// The settings this client uses.
    public let configuration: Configuration
    let http: HTTPClient
    let logger: Logger
    let tokens: KlingTokenMinter?

    /// A client over `httpClient` (by default AsyncHTTPClient's shared client, which needs no shutdown).
    ///
    /// Connection settings (connect timeout, proxies, TLS) are those of `httpClient`. The shared client retries a
    /// refused connection until the request's deadline; pass a client with
    /// `connectionPool.retryConnectionEstablishment = false` to fail fast (the `kling` CLI does). Logs go to
    /// `logger`, at debug level and below.
    public init(configuration: Configuration, httpClient: HTTPClient = .shared, logger: Logger = Logger(label: "KlingKit")) {
        self.configuration = configuration
        self.http = httpClient
        self.logger = logger
        if case .accessKey(let access, let secret, let lifetime) = configuration.credentials.storage {
            tokens = KlingTokenMinter(accessKey: access, secretKey: secret, lifetime: lifetime, renewBefore: .seconds(60))
        } else {
            tokens = nil
        }
    }

    /// The dialect this client speaks.
    public var dialect: Dialect { configuration.dialect }

    // MARK: Tasks

    /// Validates `request` locally (the server's own rules and messages), then creates the task.
    ///
    /// A create is sent once unless it carries an idempotency key (`idempotencyKey`, or a Kling `external_task_id`):
    /// only then are network failures, 429 and 5xx answers retried, so a paid task is never created twice by a retry.
    /// - Returns: the new task (queued); its ``KlingTask/id`` is how you find it again.
    /// - Throws: ``KlingError`` of kind `.validation` before any network call when the request is invalid.
    public func create(_ request: VideoRequest, idempotencyKey: String? = nil) async throws(KlingError) -> KlingTask {
        let wire = WireRequest(request, dialect: dialect)
        guard wire.issues.isEmpty else { throw KlingError.invalid(wire.issues) }
        var headers: [(String, String)] = []
        if let idempotencyKey { headers.append(("Idempotency-Key", idempotencyKey)) }
        let retrySafe = idempotencyKey != nil || (dialect == .klingOfficial && request.externalTaskID != nil)
        let data = try await send(.POST, wire.path, body: wire.data, headers: headers, retry: retrySafe, isCreate: true)
        guard case .object(let object) = data, let id = (object["taskId"] ?? object["task_id"])?.stringValue else {
            throw KlingError(.transport, message: "the create answer has no task id")
        }
        logger.debug("created task", metadata: ["taskId": "\(id)", "dialect": "\(dialect)"])
        return KlingTask(id: id, state: .queued, providerState: object["task_status"]?.stringValue ?? "queued")
    }

    /// The task as the provider reports it now.
    public func task(_ id: String) async throws(KlingError) -> KlingTask {
        let escaped = id.addingPercentEncoding(withAllowedCharacters: .urlQueryValueAllowed) ?? id
        switch dialect {
        case .market:
            return try WireAnswer.task(try await send(.GET, "/api/v1/jobs/recordInfo?taskId=\(escaped)"), dialect: .market)
        case .crun:
            return try WireAnswer.task(try await send(.GET, "/api/v1/client/job/TaskInfo?task_id=\(escaped)"), dialect: .crun)
        case .klingOfficial:
            let pathID = id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? id
            do throws(KlingError) {
                return try WireAnswer.task(try await send(.GET, "/v1/videos/text2video/\(pathID)"), dialect: .klingOfficial)
            } catch where error.httpStatus == 404 {
                // Kling keeps image-to-video tasks under their own path.
                return try WireAnswer.task(try await send(.GET, "/v1/videos/image2video/\(pathID)"), dialect: .klingOfficial)
            }
        }
    }

    /// Progress of a task until it finishes: an `AsyncSequence` of ``TaskProgress``, polled with bounded backoff
    /// (see ``PollingPolicy``). It ends after the terminal update and throws a `.timeout` ``KlingError`` carrying the
    /// task id once the policy's ceiling passes.
    public func wait(for id: String) -> TaskProgressSequence {
        TaskProgressSequence(client: self, taskID: id, policy: configuration.polling)
    }

    /// Waits for the task to finish and returns its last state (`succeeded` or `failed`).
    public func waitUntilFinished(_ id: String) async throws(KlingError) -> KlingTask {
        var last: KlingTask?
        do {
            for try await update in wait(for: id) { last = update.task }
        } catch let error as KlingError {
            throw error
        } catch {
            throw KlingError(.transport, message: "\(error)", taskID: id)
        }
        guard let last else { throw KlingError(.timeout, message: "the task did not finish", taskID: id) }
        return last
    }

    /// Cancels a queued or running task (KlingKit extension `POST /api/v1/jobs/{id}/cancel`; needs an API key).
    /// The task fails with code 499 and is refunded; a finished task answers 409.
    public func cancel(_ id: String) async throws(KlingError) -> KlingTask {
        let pathID = id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? id
        let data = try await send(.POST, "/api/v1/jobs/\(pathID)/cancel", body: Data(), extensionEndpoint: true)
        return try WireAnswer.task(data, dialect: .market)
    }

    /// The account's credit balance (Market `chat/credit`, CRUN `account/balance`; with the Kling dialect KlingKit's
    /// Market endpoint, which needs an API key).
    public func credits() async throws(KlingError) -> Int {
        switch dialect {
        case .crun:
            let data = try await send(.GET, "/api/v1/client/account/balance")
            guard let balance = data["balance"].flatMap(WireAnswer.codeText).flatMap({ Int($0) }) else {
                throw KlingError(.transport, message: "the balance answer has no data.balance")
            }
            return balance
        case .market, .klingOfficial:
            let data = try await send(.GET, "/api/v1/chat/credit", extensionEndpoint: dialect != .market)
            guard let balance = WireAnswer.codeText(data).flatMap({ Int($0) }) else {
                throw KlingError(.transport, message: "the credit answer's data is not a number")
            }
            return balance
        }
    }

    /// What `request` would cost, without creating anything (KlingKit extension `POST /api/v1/jobs/quote`; needs an
    /// API key). Validated locally first, with the Market dialect's rules the endpoint uses.
    public func quote(_ request: VideoRequest) async throws(KlingError) -> Quote {
        let wire = WireRequest(request, dialect: .market)
        guard wire.issues.isEmpty else { throw KlingError.invalid(wire.issues) }
        let data = try await send(.POST, "/api/v1/jobs/quote", body: wire.data, extensionEndpoint: true)
        func int(_ value: JSONValue?) -> Int { value.flatMap(WireAnswer.codeText).flatMap { Int($0) } ?? 0 }
        let breakdown = data["breakdown"]
        return Quote(
            credits: int(data["credits"]), balance: int(data["balance"]), affordable: data["affordable"] == .bool(true),
            seconds: int(breakdown?["seconds"]), mode: breakdown?["mode"]?.stringValue ?? "",
            creditsPerSecond: int(breakdown?["creditsPerSecond"]), audio: breakdown?["audio"] == .bool(true))
    }

    // MARK: Transport

    /// Sends one API request and returns the envelope's `data`, retrying transient failures when `retry` allows.
    func send(
        _ method: HTTPMethod, _ path: String, body: Data? = nil, headers: [(String, String)] = [], retry: Bool = true,
        isCreate: Bool = false, extensionEndpoint: Bool = false
    ) async throws(KlingError) -> JSONValue {
        let attempts = retry ? configuration.maxAttempts : 1
        var attempt = 1
        while true {
            do throws(KlingError) {
                let (status, responseHeaders, bytes) = try await exchange(
                    method, path, body: body, headers: headers, extensionEndpoint: extensionEndpoint)
                do throws(KlingError) {
                    // Envelopes of extension endpoints are Market's; their success code is 200 in every dialect.
                    return try WireAnswer.data(
                        status: status, body: bytes, headers: responseHeaders, dialect: extensionEndpoint ? .market : dialect)
                } catch {
                    var error = error
                    if let seconds = responseHeaders.first(where: { $0.0.lowercased() == "retry-after" }).flatMap({ Int($0.1) }) {
                        error.retryAfter = .seconds(seconds)
                    }
                    throw error
                }
            } catch {
                var failure = error
                if isCreate && !retry && failure.kind == .transport {
                    failure.message += ". The create may or may not have reached the provider and was not repeated, so nothing is"
                        + " paid twice: check your tasks, or send an idempotency key to make retries safe"
                }
                guard failure.isTransient, attempt < attempts else { throw failure }
                let pause = failure.retryAfter.map { min($0, .seconds(30)) } ?? .milliseconds(500 * (1 << min(attempt - 1, 4)))
                logger.debug("retrying", metadata: ["path": "\(path)", "attempt": "\(attempt)", "error": "\(failure)"])
                try? await Task.sleep(for: pause)
                attempt += 1
            }
        }
    }

    /// One HTTP exchange with the provider: status, headers and the whole (bounded) body.
    private func exchange(
        _ method: HTTPMethod, _ path: String, body: Data?, headers: [(String, String)], extensionEndpoint: Bool
    ) async throws(KlingError) -> (Int, [(String, String)], Data) {
        var request = HTTPClientRequest(url: url(path))
        request.method = method
        do {
            try await authorize(&request, extensionEndpoint: extensionEndpoint)
        } catch let error as KlingError {
            throw error
        } catch {
            throw KlingError(.transport, message: "could not sign the request: \(error)")
        }
        request.headers.add(name: "User-Agent", value: configuration.userAgent)
        request.headers.add(name: "Accept", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        do {
            let response = try await http.execute(request, timeout: .init(configuration.timeouts.request))
            let bytes = try await response.body.collect(upTo: 16 << 20)
            let fields = response.headers.map { ($0.name, $0.value) }
            return (Int(response.status.code), fields, Data(bytes.readableBytesView))
        } catch let error as KlingError {
            throw error
        } catch {
            throw KlingError(.transport, message: "\(method) \(path) failed: \(error)")
        }
    }

    /// The full URL of a path on the provider.
    func url(_ path: String) -> String {
        var base = configuration.baseURL
        while base.hasSuffix("/") { base.removeLast() }
        return base + path
    }

    /// Adds the credentials to a request: the dialect's header, or for KlingKit extension endpoints the API key as
    /// a Bearer key.
    func authorize(_ request: inout HTTPClientRequest, extensionEndpoint: Bool) async throws {
        if extensionEndpoint {
            guard let key = configuration.credentials.apiKey else {
                throw KlingError(
                    .unsupported,
                    message: "this KlingKit extension endpoint needs an API key; Kling access keys only work on the /v1/videos endpoints."
                        + " Create a key with `kling-server keys create --account NAME` and use it as the credentials")
            }
            request.headers.add(name: "Authorization", value: "Bearer \(key)")
            return
        }
        switch configuration.credentials.storage {
        case .bearer(let key): request.headers.add(name: "Authorization", value: "Bearer \(key)")
        case .apiKeyHeader(let key): request.headers.add(name: "x-api-key", value: key)
        case .accessKey:
            guard let tokens else { return }
            request.headers.add(name: "Authorization", value: "Bearer \(try await tokens.token())")
        }
    }
}

extension CharacterSet {
    /// Characters that may stand unescaped in a query value.
    static let urlQueryValueAllowed: CharacterSet = {
        var set = CharacterSet.urlQueryAllowed
        set.remove(charactersIn: "&=+#?")
        return set
    }()
}
