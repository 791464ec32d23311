import Foundation
import KlingKit
import Testing

/// The real `kling` binary against a real kling-server on loopback.
@Suite("kling CLI", .serialized, .timeLimit(.minutes(5)))
struct CLITests {
    /// Runs `kling` with the server's URL and alice's key in the environment.
    func kling(_ arguments: [String], baseURL: String, key: String?, extra: [String: String?] = [:]) async throws -> CommandRunner.Result {
        var environment: [String: String?] = [
            "KLING_BASE_URL": baseURL, "KLING_API_KEY": key, "KLING_DIALECT": nil, "KLING_ACCESS_KEY": nil, "KLING_SECRET_KEY": nil,
        ]
        environment.merge(extra) { $1 }
        return try await CommandRunner.run(CommandRunner.klingBinary, arguments, environment: environment)
    }

    func temporaryFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kling-cli-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    @Test func generateUploadsTheImageCreatesFollowsAndDownloads() async throws {
        let server = try await LiveServer.make(workers: 1, credits: 1000)
        let image = try await TestMedia.png(width: 1280, height: 720)
        let folder = try temporaryFolder()
        defer {
            try? FileManager.default.removeItem(at: folder)
            try? FileManager.default.removeItem(at: image.deletingLastPathComponent())
        }
        try await server.run { baseURL in
            let out = folder.appendingPathComponent("fox.mp4").path
            let result = try await kling(
                ["generate", "A fox wakes up", "--mode", "std", "--duration", "3", "--no-audio", "--image", image.path, "--out", out,
                 "--poll-interval", "0.2"],
                baseURL: baseURL, key: server.key)
            #expect(result.status == 0, "\(result.error)")
            #expect(result.output.split(separator: "\n").last.map(String.init) == out)
            #expect(TestMedia.isMP4(URL(fileURLWithPath: out)))
            #expect(result.error.contains("uploading \(image.path)"))
            #expect(result.error.contains("created task task_"))
            #expect(result.error.contains(": succeeded 100%"))
            #expect(result.error.contains("engine: preview (KlingKit's preview renderer, not Kling output)"))
            // Not a terminal: plain lines, no redraws.
            #expect(!result.error.contains("\u{1B}["))
            #expect(try await kling(["credits"], baseURL: baseURL, key: server.key).output == "970\n")
        }
    }

    @Test func generateWorksInTheCRUNAndKlingDialects() async throws {
        let server = try await LiveServer.make(workers: 1, credits: 1000)
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let image = try await TestMedia.png(width: 640, height: 640)
        defer { try? FileManager.default.removeItem(at: image.deletingLastPathComponent()) }
        try await server.run { baseURL in
            let crun = try await kling(
                ["generate", "A boat", "--dialect", "crun", "--mode", "std", "--duration", "3", "--aspect", "9:16", "--out",
                 folder.appendingPathComponent("crun.mp4").path, "--poll-interval", "0.2"],
                baseURL: baseURL, key: server.key)
            #expect(crun.status == 0, "\(crun.error)")
            #expect(TestMedia.isMP4(folder.appendingPathComponent("crun.mp4")))
            // Kling access keys (JWTs): the local image travels inline as base64.
            let official = try await kling(
                ["generate", "A boat", "--mode", "std", "--duration", "3", "--image", image.path, "--out",
                 folder.appendingPathComponent("kling.mp4").path, "--poll-interval", "0.2"],
                baseURL: baseURL, key: nil,
                extra: ["KLING_DIALECT": "kling", "KLING_ACCESS_KEY": server.accessKey, "KLING_SECRET_KEY": server.secretKey])
            #expect(official.status == 0, "\(official.error)")
            #expect(TestMedia.isMP4(folder.appendingPathComponent("kling.mp4")))
        }
    }

    @Test func exitCodesTellValidationAPIErrorsTimeoutsAndFailuresApart() async throws {
        let server = try await LiveServer.make(workers: 0, credits: 1000)
        try await server.run { baseURL in
            let invalid = try await kling(["generate", "A fox", "--duration", "20"], baseURL: baseURL, key: server.key)
            #expect(invalid.status == 2)
            #expect(invalid.error.contains("input.duration: must be between 3 and 15 seconds (got 20)"))
            #expect(invalid.error.contains("nothing was sent"))
            let missingFile = try await kling(["generate", "A fox", "--image", "/nonexistent.png"], baseURL: baseURL, key: server.key)
            #expect(missingFile.status == 2)

            let wrongKey = try await kling(["credits"], baseURL: baseURL, key: "wrong")
            #expect(wrongKey.status == 3)
            #expect(wrongKey.error.contains("kling-server keys create"))
            let noServer = try await kling(["credits"], baseURL: "http://127.0.0.1:9", key: server.key)
            #expect(noServer.status == 3)
            #expect(noServer.error.contains("KLING_BASE_URL"))
            let usage = try await kling(["credits"], baseURL: baseURL, key: nil)
            #expect(usage.status == 64)
            #expect(usage.error.contains("KLING_API_KEY"))

            // No workers: the task stays queued and waiting times out, naming the command that resumes.
            let client = server.client(baseURL, .market)
            let queued = try await client.create(VideoRequest(prompt: "A fox").mode(.std).duration(3))
            let timeout = try await kling(["wait", queued.id, "--timeout", "1", "--poll-interval", "0.2"], baseURL: baseURL, key: server.key)
            #expect(timeout.status == 4)
            #expect(timeout.error.contains("kling wait \(queued.id)"))
            let status = try await kling(["status", queued.id], baseURL: baseURL, key: server.key)
            #expect(status.status == 0)
            #expect(status.output.contains("state:    queued (waiting)"))
            let notYet = try await kling(["download", queued.id], baseURL: baseURL, key: server.key)
            #expect(notYet.status == 3)

            _ = try await client.cancel(queued.id)
            let failed = try await kling(["wait", queued.id], baseURL: baseURL, key: server.key)
            #expect(failed.status == 1)
            #expect(failed.error.contains("cancelled by the caller"))

            let quote = try await kling(["quote", "A fox", "--mode", "pro", "--duration", "10", "--audio"], baseURL: baseURL, key: server.key)
            #expect(quote.status == 0, "\(quote.error)")
            #expect(quote.output.contains("credits:    210"))
        }
    }

    @Test func showsALiveProgressBarOnATerminal() async throws {
        let server = try await LiveServer.make(workers: 1)
        try await server.run { baseURL in
            let task = try await server.client(baseURL, .market).create(VideoRequest(prompt: "A fox").mode(.std).duration(5))
            // `script` gives kling a pseudo-terminal and copies everything it draws.
            let command = [CommandRunner.klingBinary, "wait", task.id, "--poll-interval", "0.2"].map { "'\($0)'" }.joined(separator: " ")
            let result = try await CommandRunner.run(
                "/usr/bin/script", ["-q", "-e", "-f", "-c", command, "/dev/null"],
                environment: ["KLING_BASE_URL": baseURL, "KLING_API_KEY": server.key, "KLING_DIALECT": nil])
            #expect(result.status == 0, "\(result.output)")
            let screen = result.output
            #expect(screen.contains("\r\u{1B}[2K["))
            #expect(screen.contains("█"))
            #expect(screen.contains("100%  succeeded"))
            #expect(screen.contains(task.id))
            // Elapsed time is shown as m:ss.
            #expect(screen.contains("0:0"))
        }
    }
}
