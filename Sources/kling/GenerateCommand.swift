import ArgumentParser
import Foundation
import KlingKit

/// `kling generate "prompt" ...`: uploads local files, creates the task, follows it, downloads the video.
struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate", abstract: "Create a video, follow its progress and download it.")

    @OptionGroup var request: RequestOptions
    @OptionGroup var connection: ConnectionOptions

    @Option(help: "Where to save the video (default TASK_ID.mp4).")
    var out: String?

    @Option(name: .customLong("idempotency-key"), help: "Makes retries of the create safe: a repeat returns the first task.")
    var idempotencyKey: String?

    func run() async throws {
        let client = try connection.client()
        var taskID: String?
        do {
            let (draft, locals) = try request.request()
            let issues = draft.validate(for: client.dialect)
            guard issues.isEmpty else { throw KlingError(.validation, message: issues.summary, issues: issues) }
            var links: [String: String] = [:]
            for local in locals {
                if client.dialect == .klingOfficial && !client.configuration.credentials.isAPIKey {
                    // Kling access keys cannot use the upload endpoint; Kling's API takes images inline as raw base64.
                    guard let bytes = FileManager.default.contents(atPath: local.path) else {
                        throw KlingError(.validation, message: "\(local.path): cannot be read")
                    }
                    links[local.placeholder] = bytes.base64EncodedString()
                    continue
                }
                Terminal.error("uploading \(local.path)")
                links[local.placeholder] = try await client.upload(file: URL(fileURLWithPath: local.path), uploadPath: "kling-cli").downloadURL
            }
            let created = try await client.create(draft.replacing(links), idempotencyKey: idempotencyKey)
            taskID = created.id
            Terminal.error("created task \(created.id) (if interrupted: kling wait \(created.id) / kling download \(created.id))")
            let finished = try await follow(client, taskID: created.id)
            let status = reportFinished(finished)
            guard status == 0 else { throw ExitCode(status) }
            try await save(finished, client: client, out: out)
        } catch let error as KlingError {
            throw ExitStatus.report(error, taskID: taskID)
        }
    }
}

/// Downloads a finished task's video, with progress on a terminal, and prints where it is and which engine made it.
func save(_ task: KlingTask, client: KlingClient, out: String?) async throws(KlingError) {
    guard let url = task.videoURL else {
        throw KlingError(.api, message: "task \(task.id) succeeded but names no video", taskID: task.id)
    }
    let destination = URL(fileURLWithPath: ((out ?? "\(task.id).mp4") as NSString).expandingTildeInPath)
    let interactive = Terminal.isInteractive
    do throws(KlingError) {
        let result = try await client.download(url: url, to: destination) { written, total in
            guard interactive else { return }
            let of = total.map { " of \(Terminal.size($0))" } ?? ""
            Terminal.write("\r\u{1B}[2Kdownloading \(Terminal.size(written))\(of)")
        }
        if interactive { Terminal.write("\n") }
        let engine = task.engine.map { $0 == "preview" ? "preview (KlingKit's preview renderer, not Kling output)" : $0 } ?? "not reported"
        Terminal.error("saved \(Terminal.size(result.bytes)) to \(result.file.path) (engine: \(engine))")
        Terminal.output(result.file.path)
    } catch {
        var error = error
        if error.taskID == nil { error.taskID = task.id }
        throw error
    }
}
