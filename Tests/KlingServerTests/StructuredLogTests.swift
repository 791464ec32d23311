import AsyncHTTPClient
import Foundation
import KlingUpstreamFakes
import NIOCore
import NIOHTTP1
import Testing

/// JSON log lines of the real `kling-server` process: one object per line, request ids on request logs, task ids on
/// task and worker logs.
@Suite("Structured logs", .serialized, .timeLimit(.minutes(5)))
struct StructuredLogTests {
    /// Status, `X-Request-Id` and the JSON body of one call.
    struct Answer {
        var status: Int
        var requestID: String?
        var json: [String: Any]
    }

    static func send(_ url: String, method: HTTPMethod = .GET, headers: [(String, String)], body: String? = nil) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        let json = (try? JSONSerialization.jsonObject(with: Data(buffer: bytes))) as? [String: Any] ?? [:]
        return Answer(status: Int(response.status.code), requestID: response.headers.first(name: "X-Request-Id"), json: json)
    }

    /// Every line the server wrote to standard error so far, each parsed as a JSON object (`nil` for a line that is not one).
    static func logLines(in directory: URL) throws -> [(text: String, object: [String: Any]?)] {
        let files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil).filter { $0.pathExtension == "log" }
        return try files.flatMap { file in
            try String(contentsOf: file, encoding: .utf8).split(separator: "\n").map { line in
                (String(line), (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any])
            }
        }
    }

    @Test func jsonLinesCarryTheRequestIdAndTheTaskId() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kling-logs-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = try ServerProcess.accountWithKey("lena", dataDirectory: directory)
        let port = RestartTests.freePort()
        let server = try await ServerProcess.serve(
            port: port, dataDirectory: directory, environment: ["KLING_LOG_FORMAT": "json", "KLING_POLL_MS": "100"])
        defer { server.kill() }
        let base = "http://127.0.0.1:\(port)"
        let body = #"{"model":"kling-3.0/video","input":{"prompt":"a lamp in a quiet room","duration":"3","mode":"std","sound":false}}"#

        let traced = try await Self.send(
            "\(base)/api/v1/jobs/createTask", method: .POST, headers: [("Authorization", "Bearer \(key)"), ("X-Request-Id", "trace-4711")],
            body: body)
        #expect(traced.requestID == "trace-4711")
        let tracedTask = try #require((traced.json["data"] as? [String: Any])?["taskId"] as? String, "\(traced.json)")
        let untraced = try await Self.send(
            "\(base)/api/v1/client/job/CreateTask", method: .POST, headers: [("x-api-key", key)],
            body: #"{"model":"kling/v3","input":{"prompt":"a second lamp","duration":3,"mode":"std","multi_shots":false}}"#)
        let generated = try #require(untraced.requestID)
        #expect(generated.hasPrefix("req_"))
        let untracedTask = try #require((untraced.json["data"] as? [String: Any])?["task_id"] as? String, "\(untraced.json)")

        // The worker claims the first task; wait for its line (the render itself need not finish).
        var lines: [(text: String, object: [String: Any]?)] = []
        func metadata(_ object: [String: Any]?) -> [String: Any] { object?["metadata"] as? [String: Any] ?? [:] }
        for _ in 0..<600 {
            lines = try Self.logLines(in: directory)
            if lines.contains(where: { $0.object?["message"] as? String == "task claimed" }) { break }
            try await Task.sleep(for: .milliseconds(100))
        }

        #expect(!lines.isEmpty)
        for line in lines {
            let object = try #require(line.object, "not a JSON object: \(line.text)")
            #expect(Set(object.keys) == ["time", "level", "label", "message", "metadata"], "\(line.text)")
            let time = try #require(object["time"] as? String)
            #expect((try? Date(time, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))) != nil, "\(time)")
            #expect(["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(object["level"] as? String ?? ""))
            #expect(object["metadata"] is [String: Any])
        }
        let accepted = lines.filter { $0.object?["message"] as? String == "create accepted" }.map { metadata($0.object) }
        #expect(accepted.contains { $0["request_id"] as? String == "trace-4711" && $0["task_id"] as? String == tracedTask }, "\(accepted)")
        #expect(accepted.contains { $0["request_id"] as? String == generated && $0["task_id"] as? String == untracedTask }, "\(accepted)")
        let claimed = lines.filter { $0.object?["message"] as? String == "task claimed" }.map { metadata($0.object) }
        #expect(claimed.contains { [tracedTask, untracedTask].contains($0["task_id"] as? String ?? "") }, "\(claimed)")
    }

    /// Runs `kling-server serve` with `arguments` and `environment` added; its exit status and standard error.
    private func refusedStart(arguments: [String] = [], environment: [String: String] = [:]) throws -> (status: Int32, message: String) {
        let process = Process()
        process.executableURL = ServerProcess.binary
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kling-start-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        process.arguments = ["serve", "--port", "0", "--data-dir", directory.path] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, message)
    }

    @Test func serveRefusesAnUnknownLogFormat() throws {
        let (status, message) = try refusedStart(arguments: ["--log-format", "xml"])
        #expect(status != 0)
        #expect(message.contains("json or text"), "\(message)")
    }

    @Test func serveRefusesCPUFlagsFFmpegWouldRefuse() throws {
        let (status, message) = try refusedStart(environment: ["KLING_FFMPEG_CPUFLAGS": "+nosuchflag"])
        #expect(status != 0)
        #expect(message.contains("KLING_FFMPEG_CPUFLAGS") && message.contains("+nosuchflag"), "\(message)")
    }

    @Test(arguments: [
        (["KLING_ENGINES": "openai-videos"], "the openai-videos engine needs KLING_OPENAI_VIDEOS_URL"),
        (["KLING_ENGINES": "openai-videos", "KLING_OPENAI_VIDEOS_URL": "http://127.0.0.1:30000", "KLING_OPENAI_VIDEOS_PROFILE": "wan9"],
            "KLING_OPENAI_VIDEOS_PROFILE: unknown profile \"wan9\" (use openai, sglang-hunyuanvideo, sglang-ltx2, sglang-wan2.2, sora, vllm-omni-hunyuanvideo, vllm-omni-ltx2, vllm-omni-wan2.2)"),
        (["KLING_ENGINES": "openai-videos", "KLING_OPENAI_VIDEOS_URL": "http://127.0.0.1:30000/v1"],
            "KLING_OPENAI_VIDEOS_URL: http://127.0.0.1:30000/v1 must be an http or https base URL, without /v1"),
        (["KLING_ENGINES": "openai-video"], "KLING_ENGINES: unknown engine \"openai-video\" (use official, market, crun, preview, openai-videos or comfyui)"),
    ])
    func serveRefusesAnOpenAIVideosEngineWithoutItsSettings(_ environment: [String: String], _ expected: String) throws {
        let (status, message) = try refusedStart(environment: environment)
        #expect(status != 0)
        #expect(message.contains(expected), "\(message)")
    }

    @Test func serveRefusesAComfyUIEngineWhoseTemplateOrInstanceCannotRunIt() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kling-wf-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../workflows/comfyui/wan2.2-t2v.json")
        let template = try String(contentsOf: shipped, encoding: .utf8)

        var (status, message) = try refusedStart(environment: ["KLING_ENGINES": "comfyui", "KLING_COMFYUI_URLS": "http://127.0.0.1:1"])
        #expect(status != 0 && message.contains("the comfyui engine needs KLING_COMFYUI_URLS and KLING_COMFYUI_WORKFLOWS"), "\(message)")

        try template.replacingOccurrences(of: "\"9.length\"", with: "\"9.frames\"").write(to: folder.appendingPathComponent("wan.json"), atomically: true, encoding: .utf8)
        let environment = ["KLING_ENGINES": "comfyui", "KLING_COMFYUI_URLS": "http://127.0.0.1:1", "KLING_COMFYUI_WORKFLOWS": folder.path]
        (status, message) = try refusedStart(environment: environment)
        #expect(status != 0 && message.contains("KLING_COMFYUI_WORKFLOWS: wan.json: inputs.frames: node 9 has no input frames"), "\(message)")

        // A template whose nodes an instance that answers lacks.
        try template.write(to: folder.appendingPathComponent("wan.json"), atomically: true, encoding: .utf8)
        let media = try FakeMedia.make(in: folder.appendingPathComponent("media"))
        var script = FakeComfyUI.Script()
        script.classes.remove("KSamplerAdvanced")
        let fake = FakeComfyUI(script: script, videoFile: media.video)
        let refused = try await fake.run { base in
            try refusedStart(environment: ["KLING_ENGINES": "comfyui", "KLING_COMFYUI_URLS": base, "KLING_COMFYUI_WORKFLOWS": folder.path]).message
        }
        #expect(refused.contains("KLING_COMFYUI_WORKFLOWS: wan.json: workflow: http://127.0.0.1:"), "\(refused)")
        #expect(refused.contains("has no node KSamplerAdvanced"), "\(refused)")
    }
}
