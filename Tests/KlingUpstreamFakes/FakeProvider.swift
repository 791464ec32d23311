import AsyncHTTPClient
import Foundation
import Hummingbird
import JWTKit
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// A loopback fake of one upstream provider, a real HTTP server written from the contracts
/// (/work/shared/contracts: kling-official.md, market.md, crun.md) with scripted behaviour and a record of every call.
public final class FakeProvider: Sendable {
    /// Which provider's API it speaks.
    public enum Flavor: String, Sendable {
        case official, market, crun
    }

    /// One call as received.
    public struct Call: Sendable {
        public var method: String
        public var path: String
        public var headers: [String: String]
        public var body: Data
        public var at: ContinuousClock.Instant = .now
        public var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
    }

    /// What the fake saw and did.
    public struct Record: Sendable {
        public var creates: [Call] = []
        public var queries: [Call] = []
        /// Instants of API calls that were let through the rate limit.
        public var admitted: [ContinuousClock.Instant] = []
        /// Calls refused by the rate limit (not scripted refusals).
        public var rateRefusals = 0
        public var scriptedRefusals = 0
        public var downloads = 0
        public var callbacksSent = 0
        public var callbackFailures = 0

        /// The most calls admitted in any window of one second.
        public var maxAdmittedPerSecond: Int {
            var most = 0
            var start = 0
            for end in admitted.indices {
                while admitted[end] - admitted[start] >= .seconds(1) { start += 1 }
                most = max(most, end - start + 1)
            }
            return most
        }
    }

    struct FakeTask {
        var id: String
        var externalID: String?
        var body: Data
        var callbackURL: String?
        var createdAt: ContinuousClock.Instant
        var createdMillis: Int64
        var queries = 0
        var finished = false
    }

    struct State {
        var script: FakeScript
        var record = Record()
        var tasks: [String: FakeTask] = [:]
        var tokens: Double = 0
        var refilledAt = ContinuousClock.now
        var next = 0
    }

    public let flavor: Flavor
    /// The key (Market, CRUN) or access key (official) calls must carry.
    public let key: String
    /// The official API's secret key, which tokens must be signed with.
    public let secretKey: String
    /// The MP4 served as every task's result, and the cover image.
    let videoFile: URL
    let coverFile: URL?
    let state: Mutex<State>
    let baseURL = Mutex<String>("")

    public init(flavor: Flavor, key: String, secretKey: String = "", script: FakeScript, videoFile: URL, coverFile: URL? = nil) {
        self.flavor = flavor
        self.key = key
        self.secretKey = secretKey
        self.videoFile = videoFile
        self.coverFile = coverFile
        var state = State(script: script)
        state.tokens = script.rateLimit?.burst ?? 0
        self.state = Mutex(state)
    }

    /// What was seen so far.
    public var record: Record { state.withLock { $0.record } }

    /// Changes the script for later calls.
    public func update(_ change: (inout FakeScript) -> Void) { state.withLock { change(&$0.script) } }

    /// Runs the fake on a free loopback port for the duration of `body`, which gets its base URL.
    public func run<T: Sendable>(_ body: @Sendable (String) async throws -> T) async throws -> T {
        try await LoopbackServer.run(router(), name: "fake-\(flavor.rawValue)") { base in
            baseURL.withLock { $0 = base }
            return try await body(base)
        }
    }

    // MARK: Routes

    private func router() -> Router<BasicRequestContext> {
        let router = Router()
        switch flavor {
        case .official:
            for kind in ["text2video", "image2video"] {
                router.post("v1/videos/\(kind)") { request, _ in try await self.create(request) }
                router.get("v1/videos/\(kind)/:id") { request, context in
                    try await self.query(request, id: context.parameters.get("id") ?? "")
                }
            }
        case .market:
            router.post("api/v1/jobs/createTask") { request, _ in try await self.create(request) }
            router.get("api/v1/jobs/recordInfo") { request, _ in
                try await self.query(request, id: request.uri.queryParameters["taskId"].map(String.init) ?? "")
            }
        case .crun:
            router.post("api/v1/client/job/CreateTask") { request, _ in try await self.create(request) }
            router.get("api/v1/client/job/TaskInfo") { request, _ in
                try await self.query(request, id: request.uri.queryParameters["task_id"].map(String.init) ?? "")
            }
        }
        router.get("results/:file") { _, context in try await self.download(context.parameters.get("file") ?? "") }
        return router
    }

    private func headers(_ request: Request) -> [String: String] {
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName.lowercased()] = field.value }
        return headers
    }

    private func create(_ request: Request) async throws -> Response {
        let body = Data(buffer: try await request.body.collect(upTo: 1 << 20))
        let call = Call(method: "POST", path: request.uri.path, headers: headers(request), body: body)
        if let refusal = try await checkAuth(call) { return refusal }
        let (refusal, delay) = state.withLock { state -> (FakeScript.Refusal?, Duration) in
            state.record.creates.append(call)
            if state.script.createRefusals.isEmpty { return (nil, state.script.createDelay) }
            state.record.scriptedRefusals += 1
            return (state.script.createRefusals.removeFirst(), state.script.createDelay)
        }
        if delay > .zero { try await Task.sleep(for: delay) }
        if let refusal { return try await answer(refusal) }
        if let limited = admit() { return limited }
        let json = call.json
        let callback = (json["callback_url"] ?? json["callBackUrl"]) as? String
        let external = json["external_task_id"] as? String
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let (task, isNew) = state.withLock { state -> (FakeTask, Bool) in
            if let external, let existing = state.tasks.values.first(where: { $0.externalID == external }) { return (existing, false) }
            state.next += 1
            let task = FakeTask(
                id: "\(flavor.rawValue)-\(state.next)", externalID: external, body: body, callbackURL: callback, createdAt: .now,
                createdMillis: now)
            state.tasks[task.id] = task
            return (task, true)
        }
        if isNew { scheduleCompletion(task.id) }
        switch flavor {
        case .official:
            return Self.json(
                200,
                [
                    "code": 0, "message": "SUCCEED", "request_id": UUID().uuidString,
                    "data": [
                        "task_id": task.id, "task_info": ["external_task_id": external ?? ""], "task_status": "submitted",
                        "created_at": now, "updated_at": now,
                    ],
                ])
        case .market:
            return Self.json(200, ["code": 200, "msg": "success", "data": ["taskId": task.id]])
        case .crun:
            return Self.json(200, ["code": 200, "message": "success", "data": ["task_id": task.id]])
        }
    }

    private func query(_ request: Request, id: String) async throws -> Response {
        let call = Call(method: "GET", path: request.uri.description, headers: headers(request), body: Data())
        if let refusal = try await checkAuth(call) { return refusal }
        let refusal = state.withLock { state -> FakeScript.Refusal? in
            state.record.queries.append(call)
            if state.script.queryRefusals.isEmpty { return nil }
            state.record.scriptedRefusals += 1
            return state.script.queryRefusals.removeFirst()
        }
        if let refusal { return try await answer(refusal) }
        if let limited = admit() { return limited }
        let found = state.withLock { state -> FakeTask? in
            guard var task = state.tasks[id] else { return nil }
            task.queries += 1
            if state.script.runFor == nil, task.queries >= state.script.queriesUntilDone { task.finished = true }
            state.tasks[id] = task
            return task
        }
        guard let task = found else { return try await answer(.status(404, code: flavor == .official ? 1203 : 404, message: "task not found")) }
        let data = statusData(task)
        switch flavor {
        case .official: return Self.json(200, ["code": 0, "message": "SUCCEED", "request_id": UUID().uuidString, "data": data])
        case .market: return Self.json(200, ["code": 200, "msg": "success", "data": data])
        case .crun: return Self.json(200, ["code": 200, "message": "success", "data": data])
        }
    }

    /// The query `data` of a task in the flavor's words (also the callback body).
    private func statusData(_ task: FakeTask) -> [String: Any] {
        let (script, base) = (state.withLock { $0.script }, baseURL.withLock { $0 })
        let video = "\(base)/results/\(task.id).mp4"
        let cover: Any = script.withCover && coverFile != nil ? "\(base)/results/\(task.id).jpg" : NSNull()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let failed: String? = if case .fail(let reason) = script.outcome { reason } else { nil }
        switch flavor {
        case .official:
            var data: [String: Any] = [
                "task_id": task.id, "task_info": ["external_task_id": task.externalID ?? ""], "created_at": task.createdMillis,
                "updated_at": now, "task_status_msg": "",
            ]
            if !task.finished {
                data["task_status"] = task.queries <= 1 && script.runFor == nil ? "submitted" : "processing"
                if let progress = script.runningProgress { data["progress"] = progress }
            } else if let failed {
                data["task_status"] = "failed"
                data["task_status_msg"] = failed
            } else {
                data["task_status"] = "succeed"
                data["final_unit_deduction"] = "1"
                var entry: [String: Any] = ["id": "video-\(task.id)", "url": video, "duration": "5"]
                if let cover = cover as? String { entry["cover_url"] = cover }
                data["task_result"] = ["videos": [entry]]
            }
            return data
        case .market:
            var data: [String: Any] = [
                "taskId": task.id, "model": "kling-3.0/video", "param": String(decoding: task.body, as: UTF8.self),
                "resultJson": NSNull(), "failCode": "", "failMsg": "", "costTime": 0, "completeTime": NSNull(),
                "createTime": task.createdMillis, "updateTime": now,
            ]
            if !task.finished {
                data["state"] = task.queries <= 1 && script.runFor == nil ? "waiting" : "generating"
                if let progress = script.runningProgress { data["progress"] = progress }
            } else if let failed {
                data["state"] = "fail"
                data["failCode"] = "501"
                data["failMsg"] = failed
            } else {
                data["state"] = "success"
                var result: [String: Any] = ["resultUrls": [video]]
                if let cover = cover as? String { result["coverUrl"] = cover }
                data["resultJson"] = String(decoding: try! JSONSerialization.data(withJSONObject: result), as: UTF8.self)
                data["completeTime"] = now
            }
            return data
        case .crun:
            var data: [String: Any] = [
                "task_id": task.id, "provider": "kling", "model_version": "kling/v3",
                "param": (try? JSONSerialization.jsonObject(with: task.body)) ?? [:], "create_at": task.createdMillis / 1000,
                "result": NSNull(), "duration_s": 0, "complete_at": NSNull(), "credits": 100, "source": "api",
            ]
            if !task.finished {
                data["status"] = task.queries <= 1 && script.runFor == nil ? "pending" : "running"
                if let progress = script.runningProgress { data["progress"] = progress }
            } else if let failed {
                data["status"] = "failed"
                data["result"] = ["code": 501, "message": failed]
            } else {
                data["status"] = "success"
                data["result"] = ["media_urls": [video]]
                data["complete_at"] = now / 1000
            }
            return data
        }
    }

    /// With `runFor`, finishes the task after it and calls back (when scripted).
    private func scheduleCompletion(_ id: String) {
        guard let runFor = state.withLock({ $0.script.runFor }) else { return }
        Task {
            try? await Task.sleep(for: runFor)
            let (task, callbacks) = state.withLock { state -> (FakeTask?, Bool) in
                state.tasks[id]?.finished = true
                return (state.tasks[id], state.script.sendCallbacks)
            }
            guard let task, callbacks, let url = task.callbackURL else { return }
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: statusData(task))))
            let ok = (try? await HTTPClient.shared.execute(request, timeout: .seconds(10)).status.code) == 200
            state.withLock {
                if ok { $0.record.callbacksSent += 1 } else { $0.record.callbackFailures += 1 }
            }
        }
    }

    private func download(_ file: String) async throws -> Response {
        let (expired, unplayable) = state.withLock { state -> (Bool, Bool) in
            state.record.downloads += 1
            if state.script.expiredDownloads > 0 {
                state.script.expiredDownloads -= 1
                return (true, false)
            }
            return (false, state.script.unplayableResult)
        }
        if unplayable, !file.hasSuffix(".jpg") {
            return Response(status: .ok, headers: [.contentType: "video/mp4"], body: .init(byteBuffer: ByteBuffer(string: "not a video at all")))
        }
        if expired { return Response(status: .forbidden, body: .init(byteBuffer: ByteBuffer(string: "link expired"))) }
        let source = file.hasSuffix(".jpg") ? coverFile : videoFile
        guard let source, let data = FileManager.default.contents(atPath: source.path) else { return Response(status: .notFound) }
        return Response(
            status: .ok, headers: [.contentType: file.hasSuffix(".jpg") ? "image/jpeg" : "video/mp4"],
            body: .init(byteBuffer: ByteBuffer(data: data)))
    }

    // MARK: Limits, auth, answers

    /// Takes a token from the bucket, or answers 429 with `Retry-After`.
    private func admit() -> Response? {
        let refused = state.withLock { state -> Bool in
            guard let limit = state.script.rateLimit else {
                state.record.admitted.append(.now)
                return false
            }
            let now = ContinuousClock.now
            let elapsed = now - state.refilledAt
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            state.tokens = min(limit.burst, state.tokens + seconds * limit.perSecond)
            state.refilledAt = now
            guard state.tokens >= 1 else {
                state.record.rateRefusals += 1
                return true
            }
            state.tokens -= 1
            state.record.admitted.append(now)
            return false
        }
        return refused ? envelopeError(429, code: flavor == .official ? 1302 : 429, message: "rate limit exceeded", retryAfter: 1) : nil
    }

    private func checkAuth(_ call: Call) async throws -> Response? {
        switch flavor {
        case .official:
            guard let header = call.headers["authorization"], header.hasPrefix("Bearer ") else {
                return envelopeError(401, code: 1001, message: "Authorization missing")
            }
            let keys = JWTKeyCollection()
            await keys.add(hmac: HMACKey(from: secretKey), digestAlgorithm: .sha256)
            guard let claims = try? await keys.verify(String(header.dropFirst(7)), as: OfficialClaims.self), claims.iss.value == key else {
                return envelopeError(401, code: 1002, message: "Authorization invalid")
            }
            return nil
        case .market:
            return call.headers["authorization"] == "Bearer \(key)" ? nil : envelopeError(401, code: 401, message: "unauthorized")
        case .crun:
            return call.headers["x-api-key"] == key ? nil : envelopeError(401, code: 401, message: "unauthorized")
        }
    }

    private func answer(_ refusal: FakeScript.Refusal) async throws -> Response {
        switch refusal {
        case .rateLimited(let retryAfter):
            return envelopeError(429, code: flavor == .official ? 1302 : 429, message: "rate limit exceeded", retryAfter: retryAfter)
        case .serverError:
            return envelopeError(500, code: flavor == .official ? 5000 : 500, message: "internal error")
        case .status(let status, let code, let message):
            return envelopeError(status, code: code, message: message)
        case .stall(let duration):
            try await Task.sleep(for: duration)
            return envelopeError(504, code: flavor == .official ? 5000 : 500, message: "stalled")
        }
    }

    private func envelopeError(_ status: Int, code: Int, message: String, retryAfter: Int? = nil) -> Response {
        let messageKey = flavor == .market ? "msg" : "message"
        var body: [String: Any] = ["code": code, messageKey: message, "data": NSNull()]
        if flavor == .official { body["request_id"] = UUID().uuidString }
        var response = Self.json(status, body)
        if let retryAfter { response.headers[.retryAfter] = String(retryAfter) }
        return response
    }

    static func json(_ status: Int, _ object: [String: Any]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data("{}".utf8)
        return Response(
            status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: data)))
    }

    /// The claims the official API checks.
    struct OfficialClaims: JWTPayload {
        var iss: IssuerClaim
        var exp: ExpirationClaim
        var nbf: NotBeforeClaim

        func verify(using algorithm: some JWTAlgorithm) async throws {
            try exp.verifyNotExpired()
            try nbf.verifyNotBefore()
        }
    }
}
