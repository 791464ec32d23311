import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

/// Golden shapes of every dialect's answers: each fixture lists the exact keys of an answer and the JSON type of
/// each value ("string", "number", "boolean", "null", "object", "array", or alternatives joined by "|"; nested objects
/// are checked the same way, arrays by their first element). A renamed, missing or extra field fails.
@Suite("Contract shapes (golden fixtures)", .timeLimit(.minutes(3)))
struct ContractShapeTests {
    static let fixtures: [String: String] = [
        "market.create": #"{"code":"number","msg":"string","data":{"taskId":"string"}}"#,
        "market.recordInfo.success": #"""
        {"code":"number","msg":"string","data":{"taskId":"string","model":"string","state":"string","param":"string",
         "resultJson":"string","failCode":"string","failMsg":"string","costTime":"number","completeTime":"number",
         "createTime":"number","updateTime":"number","consumeCredits":"number","progress":"number","engine":"string"}}
        """#,
        "market.credit": #"{"code":"number","msg":"string","data":"number"}"#,
        "market.error": #"{"code":"number","msg":"string","data":"null"}"#,
        "crun.create": #"{"code":"number","message":"string","data":{"task_id":"string"}}"#,
        "crun.taskInfo.success": #"""
        {"code":"number","message":"string","data":{"task_id":"string","provider":"string","model_version":"string",
         "status":"string","param":"object","create_at":"number","result":{"media_urls":["string"],"cover_url":"string"},
         "duration_s":"number","complete_at":"number","credits":"number","source":"string","progress":"number","engine":"string"}}
        """#,
        "crun.balance": #"{"code":"number","message":"string","data":{"balance":"number"}}"#,
        "crun.error": #"{"code":"number","message":"string","data":"null"}"#,
        "kling.create": #"""
        {"code":"number","message":"string","request_id":"string","data":{"task_id":"string","task_info":"object",
         "task_status":"string","created_at":"number","updated_at":"number"}}
        """#,
        "kling.query.success": #"""
        {"code":"number","message":"string","request_id":"string","data":{"task_id":"string","task_status":"string",
         "task_status_msg":"string","task_info":"object","created_at":"number","updated_at":"number",
         "final_unit_deduction":"string","task_result":{"videos":[{"id":"string","url":"string","duration":"string"}]},
         "progress":"number","engine":"string"}}
        """#,
        "kling.error": #"{"code":"number","message":"string","request_id":"string","data":"null"}"#,
        "openai.video.completed": #"""
        {"id":"string","object":"string","model":"string","status":"string","progress":"number","created_at":"number",
         "completed_at":"number","expires_at":"number","prompt":"string","seconds":"string","size":"string","error":"null",
         "remixed_from_video_id":"null","engine":"string"}
        """#,
        "openai.list": #"{"object":"string","data":"array","has_more":"boolean","first_id":"string","last_id":"string"}"#,
        "openai.error": #"{"error":{"message":"string","type":"string","param":"string|null","code":"string|null"}}"#,
    ]

    /// Differences between `value` and the fixture's shape, as paths.
    static func mismatches(_ value: Any, _ shape: Any, path: String = "$") -> [String] {
        switch shape {
        case let types as String:
            let actual: String =
                switch value {
                case is NSNull: "null"
                case let number as NSNumber: String(cString: number.objCType) == "c" ? "boolean" : "number"
                case is String: "string"
                case is [Any]: "array"
                case is [String: Any]: "object"
                default: "unknown"
                }
            return types.split(separator: "|").contains(Substring(actual)) ? [] : ["\(path): \(actual), expected \(types)"]
        case let object as [String: Any]:
            guard let value = value as? [String: Any] else { return ["\(path): not an object"] }
            var problems = Set(value.keys).symmetricDifference(object.keys).map { "\(path).\($0): \(value[$0] == nil ? "missing" : "unexpected")" }
            for (key, nested) in object { if let actual = value[key] { problems += mismatches(actual, nested, path: "\(path).\(key)") } }
            return problems
        case let array as [Any]:
            guard let value = value as? [Any] else { return ["\(path): not an array"] }
            guard let first = value.first, let element = array.first else { return [] }
            return mismatches(first, element, path: "\(path)[0]")
        default:
            return ["\(path): bad fixture"]
        }
    }

    static func check(_ name: String, _ raw: String) throws {
        let fixture = try JSONSerialization.jsonObject(with: Data(try #require(fixtures[name]).utf8))
        let value = try JSONSerialization.jsonObject(with: Data(raw.utf8), options: .fragmentsAllowed)
        let problems = mismatches(value, fixture)
        #expect(problems.isEmpty, "\(name): \(problems) in \(raw)")
    }

    @Test func everyDialectAnswersInItsContractShape() async throws {
        let server = try await TestServer.make(workers: 1, credits: 1000)
        try await server.run { (client) async throws -> Void in
            func get(_ path: String, _ headers: HTTPFields) async throws -> String {
                try await client.execute(uri: path, method: .get, headers: headers) { String(buffer: $0.body) }
            }
            func post(_ path: String, _ headers: HTTPFields, _ body: String) async throws -> String {
                try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: body)) { String(buffer: $0.body) }
            }
            let market = TestDialect.market.headers(key: server.key)
            let crun = TestDialect.crun.headers(key: server.key)
            let bearer: HTTPFields = [.authorization: "Bearer \(server.key)", .contentType: "application/json"]

            let marketCreated = try await post(
                "/api/v1/jobs/createTask", market, #"{"model":"kling-3.0/video","input":{"prompt":"p","duration":"3","mode":"std"}}"#)
            try Self.check("market.create", marketCreated)
            let marketID =
                try #require((try JSONSerialization.jsonObject(with: Data(marketCreated.utf8)) as? [String: Any])?["data"] as? [String: Any])[
                    "taskId"] as? String
            let crunCreated = try await post(
                "/api/v1/client/job/CreateTask", crun, #"{"model":"kling/v3","input":{"prompt":"p","duration":3,"mode":"std","multi_shots":false}}"#)
            try Self.check("crun.create", crunCreated)
            let klingCreated = try await post("/v1/videos/text2video", bearer, #"{"prompt":"p","duration":"3","external_task_id":"shape-1"}"#)
            try Self.check("kling.create", klingCreated)
            let openAICreated = try await post("/v1/videos", bearer, #"{"prompt":"p","seconds":"3"}"#)
            let openAIID = try #require((try JSONSerialization.jsonObject(with: Data(openAICreated.utf8)) as? [String: Any])?["id"] as? String)

            _ = try await client.waitForTerminal(.market, id: try #require(marketID), key: server.key)
            for _ in 0..<300 {
                let status =
                    (try JSONSerialization.jsonObject(with: Data(try await get("/v1/videos/\(openAIID)", bearer).utf8)) as? [String: Any])?["status"]
                    as? String
                if status == "completed" || status == "failed" { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            let id = try #require(marketID)
            try Self.check("market.recordInfo.success", try await get("/api/v1/jobs/recordInfo?taskId=\(id)", market))
            try Self.check("crun.taskInfo.success", try await get("/api/v1/client/job/TaskInfo?task_id=\(id)", crun))
            try Self.check("kling.query.success", try await get("/v1/videos/text2video/\(id)", bearer))
            try Self.check("openai.video.completed", try await get("/v1/videos/\(openAIID)", bearer))
            try Self.check("openai.list", try await get("/v1/videos?limit=2", bearer))
            try Self.check("market.credit", try await get("/api/v1/chat/credit", market))
            try Self.check("crun.balance", try await get("/api/v1/client/account/balance", crun))

            try Self.check("market.error", try await get("/api/v1/jobs/recordInfo?taskId=nope", market))
            try Self.check("crun.error", try await get("/api/v1/client/job/TaskInfo?task_id=nope", crun))
            try Self.check("kling.error", try await get("/v1/videos/text2video/nope", bearer))
            try Self.check("openai.error", try await post("/v1/videos", bearer, #"{"seconds":"3"}"#))
        }
    }
}
